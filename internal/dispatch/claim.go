package dispatch

import (
	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"
)

// claim takes or renews this node's claim on the destination; an idle lane gives it up so that
// another node (the new owner of the destination's partition after a rebalance) can take it. It
// reports whether the lane is idle and holds no claim, so that it may be removed. A claim that
// could not be renewed for ClaimTTL counts as lost: another node may hold it by now.
//
// A lane that consumes jobs of the destination but cannot take the claim asks for it (Claim's
// want), and a holder that has had no jobs of its own for ClaimTTL/3 hands it over (handover.go):
// the claim follows the node that consumes the destination's partition, which then sends its jobs
// straight away instead of parking every one for the holder to drain.
func (l *lane) claim() (removable bool) {
	now := l.d.opts.Now()
	ttl := l.d.opts.ClaimTTL
	closed := l.breaker.State() == gobreaker.StateClosed
	l.mu.Lock()
	idle, owned := l.idleLocked(now), l.owned
	live := !l.lastLive.IsZero() && now.Sub(l.lastLive) < ttl // jobs of its own arrived lately: this node wants the destination
	handover := owned && !idle && closed && l.handoverLocked(now)
	if handover {
		l.owned = false // nothing is queued from now on: the next holder sends
		l.handedOver = now
	}
	handedOver := l.handedOver
	l.mu.Unlock()
	// An open or half-open circuit is state worth keeping: the lane stays.
	idle = idle && closed
	ctx, cancel := l.readCtx()
	defer cancel()
	if handover {
		l.d.log.Info("handing the destination over to the node that consumes its jobs", zap.String("destinationId", l.destID))
		l.d.metrics.handovers.Inc()
		if err := l.d.store.Release(ctx, l.destID, l.d.opts.NodeID); err != nil && l.ctx.Err() == nil {
			// The claim lapses by itself within ClaimTTL; this node sends nothing meanwhile.
			l.d.log.Warn("releasing destination claim failed", zap.Error(err), zap.String("destinationId", l.destID))
		}
		return false
	}
	if idle {
		if !owned {
			return true
		}
		if err := l.d.store.Release(ctx, l.destID, l.d.opts.NodeID); err != nil {
			return false
		}
		l.mu.Lock()
		l.owned = false
		l.mu.Unlock()
		return true
	}
	if !owned && !live && now.Sub(handedOver) < ttl {
		return false // handed over just now, and nothing of its own to send: leave it to the asker
	}
	ok, wantedAt, err := l.d.store.Claim(ctx, l.destID, l.d.opts.NodeID, now, ttl, live)
	if err != nil {
		if l.ctx.Err() == nil {
			l.d.log.Warn("claiming destination failed", zap.Error(err), zap.String("destinationId", l.destID))
		}
		l.mu.Lock()
		if l.owned && now.Sub(l.claimedAt) >= ttl {
			l.owned = false
			l.d.log.Warn("destination claim lapsed: not sending until it is renewed", zap.String("destinationId", l.destID))
		}
		l.mu.Unlock()
		return false
	}
	l.mu.Lock()
	acquired := ok && !l.owned
	l.owned = ok
	if ok {
		l.claimedAt, l.wantedAt = now, wantedAt
	}
	l.mu.Unlock()
	if acquired {
		// Another node may have served the destination until just now: spend the burst this
		// lane saved up while it did not own it, so the handover cannot add a burst on top of
		// the previous owner's calls.
		emptyBucket(l.limiter)
	}
	return false
}

func (l *lane) isOwned() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.owned
}
