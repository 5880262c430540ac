//go:build unix

package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
)

func TestMedianResult(t *testing.T) {
	var runs []*result
	for i, v := range []float64{300, 100, 200} {
		r := newResult("deliver store=sqlite").set("delivered_per_s", v, 0).set("dups", float64(i), 0)
		r.judge, r.target = "delivered_per_s", 250
		r.text = "run" + string(rune('a'+i))
		runs = append(runs, r)
	}
	m := medianResult(runs)
	if m.vals["delivered_per_s"] != 200 || m.vals["dups"] != 1 || m.text != "runc" || m.pass() {
		t.Errorf("median: %s", m)
	}
	if got := m.String(); !strings.Contains(got, "delivered_per_s=200 dups=1 target:delivered_per_s>=250 MISS runc") {
		t.Errorf("String: %s", got)
	}
	low := newResult("x").set("p99_ms", 20, 1)
	low.judge, low.target, low.atMost = "p99_ms", 30, true
	if !low.pass() || !strings.Contains(low.String(), "p99_ms<=30 PASS") {
		t.Errorf("at-most target: %s", low)
	}
}

func TestMetric(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("# HELP qgate_deliveries_parked_total x\n" +
			"qgate_deliveries_parked_total 1.2e+06\n" +
			"qgate_deliveries_parked_total_other 5\n" +
			`qgate_deliveries_total{reason="accepted",status="delivered"} 7` + "\n" +
			`qgate_deliveries_total{reason="x",status="delivered"} 3` + "\n" +
			`qgate_deliveries_total{reason="y",status="dead_lettered"} 100` + "\n"))
	}))
	defer srv.Close()
	s := &stack{base: srv.URL}
	ctx := context.Background()
	if v, err := s.metric(ctx, "qgate_deliveries_parked_total", ""); err != nil || v != 1.2e6 {
		t.Errorf("parked: %v %v", v, err)
	}
	if v, err := s.metric(ctx, "qgate_deliveries_total", `status="delivered"`); err != nil || v != 10 {
		t.Errorf("delivered: %v %v", v, err)
	}
}

func TestMemStatusAndCPU(t *testing.T) {
	rss, hwm, err := memStatus(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if rss <= 0 || hwm < rss {
		t.Errorf("VmRSS %d VmHWM %d", rss, hwm)
	}
	if _, err := pidCPU(os.Getpid()); err != nil {
		t.Error(err)
	}
}
