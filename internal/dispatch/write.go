package dispatch

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/delivery"
)

const (
	// writeTimeout bounds one try of a durable write; a write is retried with a fresh one.
	writeTimeout = 10 * time.Second
	// readTimeout bounds one store read of a lane (park state, claims, statuses).
	readTimeout = 5 * time.Second
	// stopGrace is how long a stopping dispatcher keeps retrying the writes of outcomes and
	// parkings, counted from the moment it began to stop.
	stopGrace = 5 * time.Second
	// lateTry bounds the single try of a write that begins after stopGrace, as long as no write
	// has failed past it (the store answers): an attempt that finishes late is still recorded.
	lateTry = 2 * time.Second
)

// persist applies a batch — an attempt's outcome, a parking, an unparking — and reports whether
// the store confirmed it. While the dispatcher runs it retries, each try with its own timeout,
// until the store does: an outcome is durable only when the store said so, and a record is never
// finished on an unconfirmed write. Once the dispatcher stops it keeps trying until the stop
// grace ends (see stopGrace and lateTry), then returns false: the caller leaves the record
// uncommitted, so it is read again after the restart and resent with the same Idempotency-Key
// (at least once, never lost).
func (l *lane) persist(b delivery.Batch) bool {
	d := l.d
	for i := 0; ; i++ {
		limit, ok := d.writeDeadline(l.ctx)
		if !ok {
			return false
		}
		ctx, cancel := context.WithDeadline(context.Background(), limit)
		err := d.status.Write(ctx, b)
		cancel()
		if err == nil {
			return true
		}
		if l.ctx.Err() != nil && !time.Now().Before(d.graceEnd()) {
			d.gaveUp.Store(true)
			d.log.Error("status write failed while stopping; the job stays uncommitted and is read again after the restart",
				zap.Error(err), zap.String("destinationId", l.destID))
			return false
		}
		d.log.Warn("status write failed; retrying", zap.Error(err), zap.String("destinationId", l.destID), zap.Int("try", i+1))
		pause := time.NewTimer(retryDelay(i))
		select {
		case <-pause.C:
		case <-l.ctx.Done(): // stopping: go on within the grace at once
		}
		pause.Stop()
	}
}

// writeDeadline returns the deadline of the next try of a durable write, or false when no try
// is left: while running, a fresh writeTimeout; while stopping, the stop grace (or one lateTry
// past it, unless a write already failed past it).
func (d *Dispatcher) writeDeadline(lane context.Context) (time.Time, bool) {
	now := time.Now()
	limit := now.Add(writeTimeout)
	if lane.Err() == nil {
		return limit, true
	}
	end := d.graceEnd()
	if now.Before(end) {
		return earliest(limit, end), true
	}
	if d.gaveUp.Load() {
		return time.Time{}, false
	}
	return now.Add(lateTry), true
}

// graceEnd is when the stop grace ends (far in the future while running).
func (d *Dispatcher) graceEnd() time.Time {
	if p := d.stopping.Load(); p != nil {
		return *p
	}
	return time.Now().Add(time.Hour)
}

func earliest(a time.Time, bs ...time.Time) time.Time {
	for _, b := range bs {
		if b.Before(a) {
			a = b
		}
	}
	return a
}

// readCtx returns a context for one store read of the lane: it ends with the lane or after
// readTimeout, so that a store that does not answer cannot hold the lane up.
func (l *lane) readCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(l.ctx, readTimeout)
}

// retryDelay is the wait before retry number attempt (0-based) of a store call that failed:
// 100 ms more each time, at most 2 s.
func retryDelay(attempt int) time.Duration {
	return time.Duration(min(attempt+1, 20)) * 100 * time.Millisecond
}

// retryPause waits retryDelay(attempt). It returns false when ctx ends first.
func retryPause(ctx context.Context, attempt int) bool {
	return sleep(ctx, retryDelay(attempt))
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
