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

func TestRatioJudgesTheIssuesTargets(t *testing.T) {
	for _, tc := range []struct {
		r    *result
		pass bool
		text string
	}{
		{ratio("deliver", 6000, 5000, 1.0, false, 0), true, "qgate=6000.0 peer=5000.0 ratio=1.20 target:ratio>=1 PASS"},
		{ratio("deliver", 4000, 5000, 1.0, false, 0), false, "ratio=0.80 target:ratio>=1 MISS"},
		{ratio("p99", 40, 28, 1.5, true, 2), true, "ratio=1.43 target:ratio<=1.5 PASS"},
		{ratio("p99", 43, 28, 1.5, true, 2), false, "ratio=1.54 target:ratio<=1.5 MISS"},
		{ratio("p99 ms", 51, 0, 50, true, 1), false, "qgate=51.0 target:qgate<=50 MISS"},
		{ratio("idle", 0.015, 0, 0.02, true, 3), true, "qgate=0.015 target:qgate<=0.02 PASS"},
	} {
		if tc.r.pass() != tc.pass || !strings.Contains(tc.r.String(), tc.text) {
			t.Errorf("%s: pass %v, want %v; %q does not contain %q", tc.r.label, tc.r.pass(), tc.pass, tc.r.String(), tc.text)
		}
	}
	r := newResult("x").set("a", 1, 0).set("b", 2, 0)
	r.drop("a")
	if r.String() != "x b=2" {
		t.Errorf("drop: %q", r.String())
	}
}
