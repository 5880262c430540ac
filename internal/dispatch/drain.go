package dispatch

import (
	"time"

	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/delivery"
)

// drain feeds due parked deliveries to the workers — for each profile only its oldest, and
// only when nothing of that profile is in flight here — and keeps the destination's claim.
//
// It starts the lane (park state, claim) and, when the lane has been idle long enough, gives up
// the claim and removes the lane; the lane's workers end with it.
func (l *lane) drain() {
	defer l.d.wg.Done()
	defer l.shut()
	if !l.start() {
		return
	}
	t := time.NewTicker(l.d.opts.DrainInterval)
	defer t.Stop()
	lastClaim := l.d.opts.Now()
	parkEmpty := false // the last renewal's reconcile found nothing parked (reconcile)
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		case <-l.wake:
		}
		now := l.d.opts.Now()
		if now.Sub(lastClaim) >= l.claimEvery(now) {
			l.reread.Store(false)
			if l.claim() && l.d.removeLane(l) {
				return
			}
			parkEmpty = l.reconcile()
			lastClaim = now
		} else if l.reread.Swap(false) {
			parkEmpty = l.reconcile()
		}
		l.mu.Lock()
		// Right after a renewal the park is read once even when nothing is known to be parked
		// (another node may have parked while this one did not hold the claim), unless the
		// renewal's reconcile has just counted it empty.
		ready := l.owned && (l.parkedTotal > 0 || (now.Sub(lastClaim) < l.d.opts.DrainInterval && !parkEmpty))
		l.mu.Unlock()
		if !ready {
			continue
		}
		if dest, ok := l.d.reg.Get(l.destID); ok && dest.Paused && dest.DeletedAt == nil {
			continue
		}
		// An open circuit sends nothing: leave the park alone until the probe window, then let
		// one delivery through as the probe.
		limit := 4 * l.d.opts.QueueSize
		switch l.breaker.State() {
		case gobreaker.StateOpen:
			continue
		case gobreaker.StateHalfOpen:
			l.mu.Lock()
			busy := len(l.draining) > 0
			l.mu.Unlock()
			if busy {
				continue
			}
			limit = 1
		}
		queried := l.d.opts.Now()
		rctx, cancel := l.readCtx()
		heads, err := l.d.store.ParkedHeads(rctx, l.destID, now, limit)
		cancel()
		if err != nil {
			if l.ctx.Err() == nil {
				l.d.log.Warn("reading parked deliveries failed", zap.Error(err), zap.String("destinationId", l.destID))
			}
			continue
		}
		for i := range heads {
			h := &heads[i]
			size := len(h.Job)
			l.mu.Lock()
			if !l.fits(l.queued, size) { // the lane holds its bytes' worth: the rest waits
				l.mu.Unlock()
				break
			}
			_, stale := l.released[h.DeliveryID]
			// A profile with a park write in flight waits for it: its row may come before this one.
			skip := stale || l.pending[h.ProfileKey] > 0 || l.parking[h.ProfileKey] > 0 || l.draining[h.DeliveryID]
			if !skip {
				l.pending[h.ProfileKey]++
				l.draining[h.DeliveryID] = true
				l.queued += size
			}
			l.mu.Unlock()
			if skip {
				continue
			}
			job, err := delivery.DecodeJob(h.Job)
			if err != nil {
				l.d.log.Error("dropping undecodable parked job", zap.Error(err), zap.String("deliveryId", h.DeliveryID))
				ok := l.persist(delivery.Batch{Unpark: []string{h.DeliveryID}})
				l.release(item{job: delivery.Job{ProfileKey: h.ProfileKey}, parked: h, size: size}, false)
				if ok {
					l.unparked(h.ProfileKey)
				}
				continue
			}
			select {
			case l.queues[workerOf(h.ProfileKey, len(l.queues))] <- item{job: job, parked: h, size: size}:
			case <-l.ctx.Done():
				return
			}
		}
		// Releases older than this query are reflected in it and in every later one.
		l.mu.Lock()
		for id, at := range l.released {
			if at.Before(queried) {
				delete(l.released, id)
			}
		}
		l.mu.Unlock()
	}
}
