package dispatch

import (
	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"
)

// claim takes or renews this node's claim on the destination; an idle lane gives it up so that
// another node (the new owner of the destination's partition after a rebalance) can take it. It
// reports whether the lane is idle and holds no claim, so that it may be removed. A claim that
// could not be renewed for ClaimTTL counts as lost: another node may hold it by now.
func (l *lane) claim() (removable bool) {
	now := l.d.opts.Now()
	l.mu.Lock()
	idle, owned := l.idleLocked(now), l.owned
	l.mu.Unlock()
	// An open or half-open circuit is state worth keeping: the lane stays.
	idle = idle && l.breaker.State() == gobreaker.StateClosed
	ctx, cancel := l.readCtx()
	defer cancel()
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
	ok, err := l.d.store.Claim(ctx, l.destID, l.d.opts.NodeID, now, l.d.opts.ClaimTTL)
	if err != nil {
		if l.ctx.Err() == nil {
			l.d.log.Warn("claiming destination failed", zap.Error(err), zap.String("destinationId", l.destID))
		}
		l.mu.Lock()
		if l.owned && now.Sub(l.claimedAt) >= l.d.opts.ClaimTTL {
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
		l.claimedAt = now
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
