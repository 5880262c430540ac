package dispatch

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the dispatcher's collectors. Failure series are labelled by the typed reason.
type Metrics struct {
	attempts     *prometheus.CounterVec
	outcomes     *prometheus.CounterVec
	latency      prometheus.Histogram
	endToEnd     prometheus.Histogram
	breakerState *prometheus.GaugeVec
	poison       prometheus.Counter
	parked       prometheus.Counter
	duplicates   prometheus.Counter
	handovers    prometheus.Counter
}

// NewMetrics registers the dispatcher's collectors.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		attempts: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "qgate_delivery_attempts_total", Help: "Delivery attempts by outcome class and reason."}, []string{"outcome", "reason"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "qgate_deliveries_total", Help: "Deliveries finished, by final status and reason."}, []string{"status", "reason"}),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "qgate_delivery_attempt_seconds", Help: "Latency of one POST to a destination.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15)}),
		endToEnd: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "qgate_delivery_end_to_end_seconds", Help: "From ingest acknowledgement to delivery.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20)}),
		breakerState: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "qgate_destination_circuit_state", Help: "Circuit breaker state per destination: 0 closed, 1 half-open, 2 open."}, []string{"destination"}),
		poison:       prometheus.NewCounter(prometheus.CounterOpts{Name: "qgate_dispatch_skipped_total", Help: "Delivery jobs that could not be decoded and were skipped (a bug: alert on it)."}),
		parked:       prometheus.NewCounter(prometheus.CounterOpts{Name: "qgate_deliveries_parked_total", Help: "Deliveries parked in the store to wait outside RAM (paused, open circuit, long backoff, full lane)."}),
	}
	m.duplicates = prometheus.NewCounter(prometheus.CounterOpts{Name: "qgate_deliveries_deduplicated_total", Help: "Parked copies of deliveries that had already ended, closed without sending."})
	m.handovers = prometheus.NewCounter(prometheus.CounterOpts{Name: "qgate_destination_claim_handovers_total", Help: "Destination claims this node handed over to the node that consumes the destination's jobs."})
	reg.MustRegister(m.attempts, m.outcomes, m.latency, m.endToEnd, m.breakerState, m.poison, m.parked, m.duplicates, m.handovers)
	return m
}
