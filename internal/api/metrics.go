package api

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// RequestMetrics observes every request's latency by route, method and status.
func RequestMetrics(reg prometheus.Registerer) gin.HandlerFunc {
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "qgate_http_request_duration_seconds",
		Help:    "HTTP request latency by route, method and status.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"route", "method", "status"})
	reg.MustRegister(h)
	// Observers by route, method and status, looked up once: WithLabelValues hashes and
	// validates the label values (and formats the status) on every call. The routes and
	// methods are the engine's (an unmatched path is "unmatched"), so the map stays small.
	var observers sync.Map // observerKey → prometheus.Observer
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		k := observerKey{route: c.FullPath(), method: c.Request.Method, status: c.Writer.Status()}
		if k.route == "" {
			k.route = "unmatched"
		}
		o, ok := observers.Load(k)
		if !ok {
			obs := h.WithLabelValues(k.route, k.method, strconv.Itoa(k.status))
			if !standardMethod(k.method) {
				// A client chooses the method: only the standard ones are kept, so that
				// made-up ones do not grow the map.
				obs.Observe(time.Since(start).Seconds())
				return
			}
			o, _ = observers.LoadOrStore(k, obs)
		}
		o.(prometheus.Observer).Observe(time.Since(start).Seconds())
	}
}

type observerKey struct {
	route, method string
	status        int
}

func standardMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodConnect, http.MethodOptions, http.MethodTrace:
		return true
	}
	return false
}
