package dispatch

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/delivery"
)

// park stores the item to be retried at due, with the event that explains why (if any); false
// when the store did not confirm it (only possible once the dispatcher stops).
func (l *lane) park(it item, due time.Time, attempts int, first time.Time, ev *delivery.Event) bool {
	p := l.parkedOf(it, due, attempts, first)
	b := delivery.Batch{Park: []delivery.Parked{p}}
	if ev != nil {
		b.Events = []delivery.Event{*ev}
	}
	if !l.persist(b) {
		return false
	}
	if it.parked == nil {
		l.mu.Lock()
		l.addParkedLocked(it.job.ProfileKey)
		l.mu.Unlock()
		l.d.metrics.parked.Inc()
	}
	return true
}

func (l *lane) parkedOf(it item, due time.Time, attempts int, first time.Time) delivery.Parked {
	p := delivery.Parked{DeliveryID: it.job.DeliveryID, DestinationID: l.destID, ProfileKey: it.job.ProfileKey, DueAt: due, Attempts: attempts}
	switch {
	case it.parked != nil:
		p.Seq, p.Job = it.parked.Seq, it.parked.Job
	case it.rec != nil:
		p.Seq = it.rec.rec.Offset
	}
	if p.Job == nil {
		p.Job, _ = delivery.EncodeJob(it.job)
	}
	if !first.IsZero() {
		p.FirstAttemptAt = &first
	}
	return p
}

func (l *lane) unparked(profile string) {
	l.mu.Lock()
	if !l.overflow {
		if l.parked[profile]--; l.parked[profile] <= 0 {
			delete(l.parked, profile)
		}
	}
	l.parkedTotal = max(l.parkedTotal-1, 0)
	l.mu.Unlock()
	l.poke()
}

// behindLocked reports whether a profile has deliveries parked, so that its next one must wait
// behind them. l.mu is held.
func (l *lane) behindLocked(profile string) bool { return l.overflow || l.parked[profile] > 0 }

// addParkedLocked counts one more parked delivery of profile, and switches to overflow when
// too many profiles are tracked. l.mu is held.
func (l *lane) addParkedLocked(profile string) {
	l.parkedTotal++
	if l.late != nil {
		l.late[profile]++
	}
	if l.overflow {
		return
	}
	l.parked[profile]++
	if len(l.parked) > l.d.opts.MaxParkedProfiles {
		l.enterOverflowLocked(l.parkedTotal)
	}
}

func (l *lane) enterOverflowLocked(total int) {
	if !l.overflow {
		l.d.log.Warn("many profiles wait for this destination: parking all its new deliveries until the park shrinks",
			zap.String("destinationId", l.destID), zap.Int("parked", total), zap.Int("maxParkedProfiles", l.d.opts.MaxParkedProfiles))
	}
	l.overflow, l.parked, l.parkedTotal = true, map[string]int{}, total
}

// loadParked adds the store's park to the lane's park state: per profile, or — when the park
// holds more deliveries than MaxParkedProfiles — overflow with the total. What the lane parked
// before (jobs that arrived while it was loading) stays counted on top: the read may or may not
// include them, and an overcount only makes a profile wait until the next reconcile.
func (l *lane) loadParked() error {
	ctx, cancel := l.readCtx()
	defer cancel()
	epoch := l.d.parkEpoch.Load()
	total, err := l.d.store.CountParked(ctx, l.destID)
	if err != nil {
		return err
	}
	if total > int64(l.d.opts.MaxParkedProfiles) {
		l.mu.Lock()
		l.enterOverflowLocked(int(total) + l.parkedTotal)
		l.parkReadLocked(epoch)
		l.mu.Unlock()
		return nil
	}
	counts, err := l.d.store.ParkedProfiles(ctx, l.destID)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.parkReadLocked(epoch)
	for k, n := range counts {
		if !l.overflow {
			l.parked[k] += n
		}
		l.parkedTotal += n
	}
	if len(l.parked) > l.d.opts.MaxParkedProfiles {
		l.enterOverflowLocked(l.parkedTotal)
	}
	return nil
}

// parkAsync parks a live job without holding up the consumer (offer counted it in parked and
// parking); its record is finished once the parking is confirmed. While the write is retried the
// profile counts as parking, so that the drainer sends none of its parked deliveries and its
// later jobs park behind it. When ctx (the consumer's) ends before a write slot is free, the job
// is left unfinished: it is read again after the restart.
func (d *Dispatcher) parkAsync(ctx context.Context, l *lane, it item) {
	select {
	case d.parks <- struct{}{}:
	case <-ctx.Done():
		l.parkDone(it.job.ProfileKey, false)
		return
	}
	go func() {
		defer func() { <-d.parks }()
		p := l.parkedOf(it, d.opts.Now(), 0, time.Time{})
		ok := l.persist(delivery.Batch{Park: []delivery.Parked{p}})
		if ok {
			d.track.finish(it.rec.rec)
		}
		l.parkDone(it.job.ProfileKey, ok)
	}()
}

// parkDone ends a park write of the consumer's for profile; a write that was not confirmed no
// longer counts as parked.
func (l *lane) parkDone(profile string, durable bool) {
	l.mu.Lock()
	if l.parking[profile]--; l.parking[profile] <= 0 {
		delete(l.parking, profile)
	}
	l.mu.Unlock()
	if !durable {
		l.unparked(profile)
	}
	l.poke()
}
