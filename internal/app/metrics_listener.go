package app

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// startMetrics serves /metrics on QGATE_METRICS_ADDR when it is set (routes then leaves it off
// the main listener), so the scrape port can stay off the public one.
func (a *App) startMetrics() error {
	if a.cfg.MetricsAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", a.cfg.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listen on QGATE_METRICS_ADDR %s: %w", a.cfg.MetricsAddr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))
	a.metrics = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute, Addr: ln.Addr().String()}
	go func() {
		if err := a.metrics.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			a.log.Error("metrics server stopped", zap.Error(err))
		}
	}()
	a.log.Info("qgate serving /metrics", zap.String("addr", ln.Addr().String()))
	return nil
}

// MetricsAddr is the bound address of the /metrics listener, or "" when /metrics is served on
// the main one.
func (a *App) MetricsAddr() string {
	if a.metrics == nil {
		return ""
	}
	return a.metrics.Addr
}
