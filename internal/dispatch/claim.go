package dispatch

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// claim takes or renews this node's claim on the destination; an idle lane gives it up so that
// another node (the new owner of the destination's partition after a rebalance) can take it.
func (l *lane) claim() {
	now := l.d.opts.Now()
	l.mu.Lock()
	idle := l.owned && len(l.pending) == 0 && l.parkedTotal == 0 && now.Sub(l.lastActive) > l.d.opts.IdleRelease
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
	defer cancel()
	if idle {
		if err := l.d.store.Release(ctx, l.destID, l.d.opts.NodeID); err == nil {
			l.mu.Lock()
			l.owned = false
			l.mu.Unlock()
		}
		return
	}
	ok, err := l.d.store.Claim(ctx, l.destID, l.d.opts.NodeID, now, l.d.opts.ClaimTTL)
	if err != nil {
		if l.ctx.Err() == nil {
			l.d.log.Warn("claiming destination failed", zap.Error(err), zap.String("destinationId", l.destID))
		}
		return
	}
	l.mu.Lock()
	acquired := ok && !l.owned
	l.owned = ok
	l.mu.Unlock()
	if acquired {
		// Another node may have served the destination until just now: spend the burst this
		// lane saved up while it did not own it, so the handover cannot add a burst on top of
		// the previous owner's calls.
		emptyBucket(l.limiter)
	}
}

func (l *lane) isOwned() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.owned
}
