package dispatch

import (
	"context"
	"errors"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/qualtrics"
)

var errAttemptFailed = errors.New("attempt failed")

// deliver drives one item to a state the store confirmed: a final outcome, or parked. It returns
// false when the dispatcher stops first (or the store did not confirm within the stop grace).
func (l *lane) deliver(it item) bool {
	ctx, job, d := l.ctx, it.job, l.d
	attempt := 0
	var first time.Time
	if it.parked != nil {
		attempt = it.parked.Attempts
		if it.parked.FirstAttemptAt != nil {
			first = *it.parked.FirstAttemptAt
		}
	}
	// The ring catches second live copies; a parked item is checked against the store below
	// (a replayed dead letter is parked again under its own ID and must go out).
	l.mu.Lock()
	_, seen := l.recent[job.DeliveryID]
	l.mu.Unlock()
	if seen && it.parked == nil {
		d.metrics.duplicates.Inc()
		return true
	}
	channel := isChannel(job.DestinationID)
	if it.parked != nil && !channel {
		// A parked copy of a delivery that already ended (sent by the node that held the
		// destination while this copy was parked, e.g. around a rebalance) is not sent again.
		// (A channel lane checks right before each send, below.)
		if ended, ok := l.closeIfEnded(it); !ok || ended {
			return ok
		}
	}
	// Every destination change acknowledged before the update was accepted applies: the
	// registry first reflects the generation the job was routed with (no store access unless
	// that generation is newer than the registry's).
	for i := 0; ; i++ {
		if err := d.reg.Await(ctx, job.Generation); err == nil {
			break
		}
		if !retryPause(ctx, i) {
			return false
		}
	}
	for {
		if it.parked == nil {
			l.mu.Lock()
			behind := l.behindLocked(job.ProfileKey)
			l.mu.Unlock()
			if behind { // an earlier delivery of this profile was parked: wait behind it
				return l.park(it, d.opts.Now(), attempt, first, nil)
			}
		}
		dest, ok, err := d.target(ctx, job.DestinationID)
		if err != nil { // a channel the store could not read: try again in a second
			return l.park(it, d.opts.Now().Add(time.Second), attempt, first, nil)
		}
		if !ok || dest.DeletedAt != nil {
			return l.finish(it, delivery.Excluded, delivery.ReasonDestinationDeleted, nil)
		}
		l.name.Store(&dest.Name)
		if dest.Paused {
			return l.park(it, d.opts.Now(), attempt, first, nil)
		}
		if !l.isOwned() {
			return l.park(it, d.opts.Now().Add(time.Second), attempt, first, nil)
		}
		if l.breaker.State() == gobreaker.StateOpen {
			// Refused without spending a rate-limit slot: a down destination's queued jobs
			// reach the park at once instead of at the destination's rate.
			return l.park(it, d.opts.Now().Add(d.opts.BreakerTimeout), attempt, first, nil)
		}
		l.setRate(dest.RateLimitPerMinute)
		if err := l.limiter.Wait(ctx); err != nil {
			return false
		}
		if channel && it.parked != nil {
			// A notification may be cancelled (the recipient finished) while it waits for its
			// retry or for a slot of the channel's rate: a channel lane reads its status right
			// before every send, after the wait. Notifications are few; destinations'
			// deliveries skip this read.
			if ended, ok := l.closeIfEnded(it); !ok || ended {
				return ok
			}
		}
		start := d.opts.Now()
		fault := false // this attempt's 401/403 is counted in l.faults until the breaker saw it
		res, err := l.breaker.Execute(func() (qualtrics.Result, error) {
			// An attempt in flight finishes even when the dispatcher is stopping (bounded by the
			// client's per-attempt timeout), so its outcome is recorded rather than repeated.
			r := d.send(context.WithoutCancel(ctx), dest, job)
			switch r.Class {
			case qualtrics.Delivered, qualtrics.Permanent:
				return r, nil
			case qualtrics.DestinationFault:
				// Counted until the breaker has seen this failure, so a success of another
				// worker at the same moment cannot keep the circuit from opening.
				l.faults.Add(1)
				fault = true
				return r, attemptFailed(r)
			default:
				return r, attemptFailed(r)
			}
		})
		if fault {
			l.faults.Add(-1)
		}
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			// Nothing was sent: the circuit is open. Wait outside RAM for the next probe window.
			return l.park(it, d.opts.Now().Add(d.opts.BreakerTimeout), attempt, first, nil)
		}
		if first.IsZero() { // the retry window starts at the first request made, not one refused above
			first = start
		}
		attempt++
		now := d.opts.Now()
		a := &delivery.Attempt{N: attempt, At: start, StatusCode: res.Status, LatencyMS: float64(res.Latency.Microseconds()) / 1000,
			Outcome: res.Class.String(), Reason: string(res.Reason), Error: res.Excerpt}
		if res.Class == qualtrics.Delivered {
			a.Error = ""
		}
		d.metrics.attempts.WithLabelValues(res.Class.String(), string(res.Reason)).Inc()
		d.metrics.latency.Observe(res.Latency.Seconds())
		// The outcome of a finished attempt is recorded even when stopping (within the grace).
		switch {
		case res.Class == qualtrics.Delivered:
			d.metrics.endToEnd.Observe(now.Sub(job.ReceivedAt).Seconds())
			return l.finish(it, delivery.Delivered, "", a)
		case res.Class == qualtrics.Permanent:
			return l.finish(it, delivery.DeadLettered, string(res.Reason), a)
		case now.Sub(first) >= d.opts.RetryWindow:
			return l.finish(it, delivery.DeadLettered, delivery.ReasonRetryWindow, a)
		}
		wait := d.opts.Backoff.Next(attempt, res.RetryAfter)
		next := now.Add(wait)
		ev := l.event(job, delivery.Retrying, string(res.Reason), a)
		ev.NextAttemptAt = &next
		if wait > d.opts.MaxInMemoryWait {
			return l.park(it, next, attempt, first, &ev)
		}
		if !l.persist(delivery.Batch{Events: []delivery.Event{ev}}) || !sleep(ctx, wait) {
			return false
		}
	}
}

func (l *lane) event(job delivery.Job, st delivery.Status, reason string, a *delivery.Attempt) delivery.Event {
	return delivery.Event{DeliveryID: job.DeliveryID, UpdateID: job.UpdateID, DestinationID: job.DestinationID,
		Status: st, Reason: reason, At: l.d.opts.Now(), Attempt: a, EmailHash: job.EmailHash, ExternalIDHash: job.ExternalIDHash}
}

// finish records a final outcome (and takes the delivery out of the park); false when the store
// did not confirm it (only possible once the dispatcher stops).
func (l *lane) finish(it item, st delivery.Status, reason string, a *delivery.Attempt) bool {
	ev := l.event(it.job, st, reason, a)
	if st == delivery.DeadLettered {
		ev.Payload = it.job.Payload
	}
	b := delivery.Batch{Events: []delivery.Event{ev}}
	if it.parked != nil {
		b.Unpark = []string{it.parked.DeliveryID}
	}
	if !l.persist(b) {
		return false
	}
	if st == delivery.DeadLettered {
		l.loggedDeadLetter(it.job, reason, a)
	}
	l.d.metrics.outcomes.WithLabelValues(string(st), reason).Inc()
	l.remember(it.job.DeliveryID)
	if it.parked != nil {
		l.unparked(it.job.ProfileKey)
	}
	return true
}

// closeIfEnded takes a parked item whose delivery already ended out of the park without
// sending it (ended). When the store cannot say, it asks again rather than risk a second
// send; ok is false when the dispatcher stops first.
func (l *lane) closeIfEnded(it item) (ended, ok bool) {
	st, err := l.deliveryStatus(it.job.DeliveryID)
	for i := 0; err != nil; i++ {
		if !retryPause(l.ctx, i) {
			return false, false
		}
		st, err = l.deliveryStatus(it.job.DeliveryID)
	}
	if !st.Terminal() {
		return false, true
	}
	if !l.persist(delivery.Batch{Unpark: []string{it.parked.DeliveryID}}) {
		return true, false
	}
	l.unparked(it.job.ProfileKey)
	l.d.metrics.duplicates.Inc()
	return true, true
}

// deliveryStatus reads a delivery's status, bounded by readTimeout.
func (l *lane) deliveryStatus(id string) (delivery.Status, error) {
	ctx, cancel := l.readCtx()
	defer cancel()
	return l.d.store.DeliveryStatus(ctx, id)
}
