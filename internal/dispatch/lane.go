package dispatch

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/qualtrics"
	"github.com/qgate/qgate/internal/store"
)

// lane serves one destination: workers that each own a set of profiles (so one profile's jobs
// go out in order while others proceed), sharing the destination's rate limiter and breaker.
type lane struct {
	d       *Dispatcher
	destID  string
	ctx     context.Context
	queues  []chan item
	limiter *rate.Limiter
	perMin  atomic.Int64
	breaker *gobreaker.CircuitBreaker[qualtrics.Result]
	fault   atomic.Bool // the last failure was a destination fault: open at once
}

var errAttemptFailed = errors.New("attempt failed")

func newLane(ctx context.Context, d *Dispatcher, destID string) *lane {
	l := &lane{d: d, destID: destID, ctx: ctx, limiter: rate.NewLimiter(rate.Limit(float64(destination.DefaultRateLimitPerMinute)/60), 1)}
	l.perMin.Store(destination.DefaultRateLimitPerMinute)
	l.breaker = gobreaker.NewCircuitBreaker[qualtrics.Result](gobreaker.Settings{
		Name:        destID,
		MaxRequests: 1,
		Timeout:     d.opts.BreakerTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return l.fault.Load() || c.ConsecutiveFailures >= d.opts.BreakerTrips
		},
		OnStateChange: func(name string, from, to gobreaker.State) {
			d.metrics.breakerState.WithLabelValues(name).Set(float64(to))
			d.log.Warn("circuit breaker changed state", zap.String("destinationId", name), zap.String("from", from.String()), zap.String("to", to.String()))
		},
	})
	for range d.opts.Workers {
		q := make(chan item, d.opts.QueueSize)
		l.queues = append(l.queues, q)
		d.wg.Add(1)
		go l.work(q)
	}
	return l
}

// push queues an item on its profile's worker; false when ctx ended first.
func (l *lane) push(ctx context.Context, it item) bool {
	select {
	case l.queues[workerOf(it.job.ProfileKey, len(l.queues))] <- it:
		return true
	case <-ctx.Done():
		return false
	}
}

func (l *lane) close() {
	for _, q := range l.queues {
		close(q)
	}
}

func (l *lane) work(q chan item) {
	defer l.d.wg.Done()
	for it := range q {
		if l.ctx.Err() != nil {
			continue // stopping: leave it uncommitted, it is read again after restart
		}
		if l.deliver(it) {
			l.d.track.finish(it.rec)
		}
	}
}

// deliver drives one job to a durable outcome: delivered, dead-lettered or excluded. It returns
// false when the dispatcher stops first (the job stays uncommitted).
func (l *lane) deliver(it item) bool {
	ctx, job, d := l.ctx, it.job, l.d
	first := d.opts.Now()
	attempt := 0
	for {
		dest, ok := d.reg.Get(job.DestinationID)
		if !ok || dest.DeletedAt != nil {
			return l.record(ctx, job, delivery.Excluded, delivery.ReasonDestinationDeleted, nil, nil, false)
		}
		if dest.Paused {
			if !l.waitChange(ctx) {
				return false
			}
			continue
		}
		l.setRate(dest.RateLimitPerMinute)
		if err := l.limiter.Wait(ctx); err != nil {
			return false
		}
		start := d.opts.Now()
		res, err := l.breaker.Execute(func() (qualtrics.Result, error) {
			// An attempt in flight finishes even when the dispatcher is stopping (bounded by the
			// client's per-attempt timeout), so its outcome is recorded rather than repeated.
			r := d.sender.Send(context.WithoutCancel(ctx), qualtrics.Request{URL: dest.URL, Username: dest.Username, Token: dest.Token, Body: job.Payload, IdempotencyKey: job.DeliveryID})
			switch r.Class {
			case qualtrics.Delivered, qualtrics.Permanent:
				l.fault.Store(false)
				return r, nil
			default:
				l.fault.Store(r.Class == qualtrics.DestinationFault)
				return r, errAttemptFailed
			}
		})
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			// Nothing was sent: wait for the breaker's probe window.
			if !sleep(ctx, min(d.opts.BreakerTimeout/4+time.Millisecond, time.Second)) {
				return false
			}
			continue
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
		// The outcome of a finished attempt is recorded even when stopping.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		switch res.Class {
		case qualtrics.Delivered:
			d.metrics.endToEnd.Observe(now.Sub(job.ReceivedAt).Seconds())
			defer cancel()
			return l.record(rctx, job, delivery.Delivered, "", a, nil, false)
		case qualtrics.Permanent:
			defer cancel()
			return l.record(rctx, job, delivery.DeadLettered, string(res.Reason), a, nil, true)
		}
		if now.Sub(first) >= d.opts.RetryWindow {
			defer cancel()
			return l.record(rctx, job, delivery.DeadLettered, delivery.ReasonRetryWindow, a, nil, true)
		}
		wait := d.opts.Backoff.Next(attempt, res.RetryAfter)
		next := now.Add(wait)
		recorded := l.record(rctx, job, delivery.Retrying, string(res.Reason), a, &next, false)
		cancel()
		if !recorded {
			return false
		}
		if !sleep(ctx, wait) {
			return false
		}
	}
}

// record writes a delivery event durably; it retries the write until it succeeds or ctx ends.
func (l *lane) record(ctx context.Context, job delivery.Job, st delivery.Status, reason string, a *delivery.Attempt, next *time.Time, keepPayload bool) bool {
	ev := delivery.Event{DeliveryID: job.DeliveryID, UpdateID: job.UpdateID, DestinationID: job.DestinationID,
		Status: st, Reason: reason, At: l.d.opts.Now(), Attempt: a, NextAttemptAt: next}
	if keepPayload {
		ev.Payload = job.Payload
	}
	for i := 0; ; i++ {
		err := l.d.status.Write(ctx, store.Batch{Events: []delivery.Event{ev}})
		if err == nil {
			if st.Terminal() {
				l.d.metrics.outcomes.WithLabelValues(string(st), reason).Inc()
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		l.d.log.Warn("status write failed; retrying", zap.Error(err), zap.String("deliveryId", job.DeliveryID))
		if !sleep(ctx, time.Duration(min(i+1, 20))*100*time.Millisecond) {
			return false
		}
	}
}

func (l *lane) setRate(perMin int) {
	if perMin <= 0 {
		perMin = destination.DefaultRateLimitPerMinute
	}
	if l.perMin.Swap(int64(perMin)) != int64(perMin) {
		l.limiter.SetLimit(rate.Limit(float64(perMin) / 60))
	}
}

func (l *lane) waitChange(ctx context.Context) bool {
	select {
	case <-l.d.reg.Changed():
		return true
	case <-ctx.Done():
		return false
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
