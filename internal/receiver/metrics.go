package receiver

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the receiver's Prometheus collectors.
type Metrics struct {
	profiles    *prometheus.CounterVec
	accepted    prometheus.Counter
	unavailable prometheus.Counter
	requests    *prometheus.CounterVec
	produce     prometheus.Histogram
	// byStatus holds the requests counter of the statuses every request ends with but a few
	// (looked up once instead of per request).
	byStatus map[int]prometheus.Counter
}

// NewMetrics registers the receiver's collectors on reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	profiles := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "qgate_ingest_profiles_total",
		Help: "Profiles received, by verdict and (for rejections) the first error code.",
	}, []string{"verdict", "code"})
	m := &Metrics{
		profiles:    profiles,
		accepted:    profiles.WithLabelValues(StatusAccepted, ""),
		unavailable: profiles.WithLabelValues(StatusUnavailable, CodeQueueUnavailable),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "qgate_ingest_requests_total",
			Help: "Ingest requests by HTTP status.",
		}, []string{"status"}),
		produce: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "qgate_ingest_produce_seconds",
			Help:    "Time from handing a request's accepted profiles to Kafka to their acks=all acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	m.byStatus = map[int]prometheus.Counter{}
	for _, status := range []int{http.StatusAccepted, http.StatusUnprocessableEntity, http.StatusServiceUnavailable, http.StatusBadRequest} {
		m.byStatus[status] = m.requests.WithLabelValues(strconv.Itoa(status))
	}
	reg.MustRegister(m.profiles, m.requests, m.produce)
	return m
}

// request counts a request answered with status.
func (m *Metrics) request(status int) {
	if c, ok := m.byStatus[status]; ok {
		c.Inc()
		return
	}
	m.requests.WithLabelValues(strconv.Itoa(status)).Inc()
}

func (m *Metrics) rejected(code string) { m.profiles.WithLabelValues(StatusRejected, code).Inc() }
