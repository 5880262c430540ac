package dispatch

import (
	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/qualtrics"
	"github.com/qgate/qgate/internal/update"
)

// newBreaker returns the lane's circuit breaker: BreakerTrips consecutive failures, or one
// destination fault (401/403), open it; one probe at a time goes out when it half-opens.
func newBreaker(l *lane) *gobreaker.CircuitBreaker[qualtrics.Result] {
	return gobreaker.NewCircuitBreaker[qualtrics.Result](gobreaker.Settings{
		Name:        l.destID,
		MaxRequests: 1,
		Timeout:     l.d.opts.BreakerTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return l.faults.Load() > 0 || c.ConsecutiveFailures >= l.d.opts.BreakerTrips
		},
		OnStateChange: func(_ string, from, to gobreaker.State) { l.breakerChanged(from, to) },
	})
}

// breakerChanged updates the circuit metric and records an alert when a circuit opens or closes.
// The alert is written in the background, retried like an outcome; Run waits for it.
func (l *lane) breakerChanged(from, to gobreaker.State) {
	d, destID := l.d, l.destID
	d.metrics.breakerState.WithLabelValues(destID).Set(float64(to))
	d.log.Warn("circuit breaker changed state", zap.String("destinationId", destID), zap.String("from", from.String()), zap.String("to", to.String()))
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
