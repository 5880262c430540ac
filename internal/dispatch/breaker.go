package dispatch

import (
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/qualtrics"
	"github.com/qgate/qgate/internal/update"
)

// newBreaker returns the lane's circuit breaker: BreakerTrips consecutive failures, or one
// destination fault (401/403), open it; one probe at a time goes out when it half-opens.
func newBreaker(l *lane) *gobreaker.CircuitBreaker[qualtrics.Result] {
	var last atomic.Pointer[qualtrics.Result] // the latest failed attempt, for the log line
	return gobreaker.NewCircuitBreaker[qualtrics.Result](gobreaker.Settings{
		Name:        l.destID,
		MaxRequests: 1,
		Timeout:     l.d.opts.BreakerTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return l.faults.Load() > 0 || c.ConsecutiveFailures >= l.d.opts.BreakerTrips
		},
		IsSuccessful: func(err error) bool {
			var f *failedAttempt
			if errors.As(err, &f) {
				last.Store(&f.res)
			}
			return err == nil
		},
		OnStateChange: func(_ string, from, to gobreaker.State) { l.breakerChanged(from, to, last.Load()) },
	})
}

// failedAttempt is errAttemptFailed carrying the attempt's result, so the circuit's log line
// can say why it opened.
type failedAttempt struct{ res qualtrics.Result }

func (f *failedAttempt) Error() string        { return errAttemptFailed.Error() }
func (f *failedAttempt) Is(target error) bool { return target == errAttemptFailed }

func attemptFailed(r qualtrics.Result) error { return &failedAttempt{r} }

// why describes a failed attempt for a person: `401 from "nps follow-up"`, or the reason
// (timeout, connection refused) when there was no answer.
func why(r *qualtrics.Result, name string) string {
	if r == nil {
		return fmt.Sprintf("failures at %q", name)
	}
	if r.Status != 0 {
		return fmt.Sprintf("%d from %q (%s)", r.Status, name, r.Reason)
	}
	return fmt.Sprintf("%s at %q", r.Reason, name)
}

// breakerChanged updates the circuit metric and records an alert when a circuit opens or closes.
// The alert is written in the background, retried like an outcome; Run waits for it.
func (l *lane) breakerChanged(from, to gobreaker.State, last *qualtrics.Result) {
	d, destID := l.d, l.destID
	d.metrics.breakerState.WithLabelValues(destID).Set(float64(to))
	name := l.targetName()
	fields := []zap.Field{zap.String("destinationId", destID), zap.String("destination", name), zap.String("from", from.String()), zap.String("to", to.String())}
	switch to {
	case gobreaker.StateOpen:
		if last != nil {
			fields = append(fields, zap.Int("statusCode", last.Status), zap.String("reason", string(last.Reason)))
		}
		d.log.Warn(fmt.Sprintf("circuit opened for destination %q after %s: sending is suspended except for probes", name, why(last, name)), fields...)
	case gobreaker.StateClosed:
		d.log.Info(fmt.Sprintf("circuit closed for destination %q: it answers again", name), fields...)
	default:
		d.log.Info(fmt.Sprintf("circuit half-open for destination %q: one probe goes out", name), fields...)
	}
	var kind, msg string
	switch {
	case to == gobreaker.StateOpen:
		kind, msg = "circuit_opened", "deliveries to this destination are failing; sending is suspended except for probes"
	case to == gobreaker.StateClosed && from != gobreaker.StateClosed:
		kind, msg = "circuit_closed", "the destination answers again; deliveries resumed"
	default:
		return
	}
	a := delivery.Alert{ID: "alr_" + update.NewID(), DestinationID: destID, Kind: kind, Message: msg, At: d.opts.Now().UTC()}
	d.aux.Add(1)
	go func() {
		defer d.aux.Done()
		if !l.persist(delivery.Batch{Alerts: []delivery.Alert{a}}) {
			d.log.Error("recording alert failed", zap.String("destinationId", destID), zap.String("kind", kind))
		}
	}()
}

// loggedDeadLetter writes the one line a dead-lettered delivery leaves in the log: the
// destination by name, the reason, the last answer and the profile's hash (never its email).
func (l *lane) loggedDeadLetter(job delivery.Job, reason string, a *delivery.Attempt) {
	name := l.targetName()
	fields := []zap.Field{zap.String("deliveryId", job.DeliveryID), zap.String("updateId", job.UpdateID),
		zap.String("destinationId", job.DestinationID), zap.String("destination", name), zap.String("reason", reason),
		zap.String("profileKey", job.ProfileKey)}
	if a != nil {
		fields = append(fields, zap.Int("attempts", a.N), zap.Int("statusCode", a.StatusCode))
	}
	l.d.log.Warn(fmt.Sprintf("delivery dead-lettered at destination %q: %s; once the cause is fixed, replay it: qgate dead-letters replay --id %s", name, reason, job.DeliveryID), fields...)
}
