package app

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/qgate/qgate/internal/kafka"
	"github.com/qgate/qgate/internal/queue"
)

// A consumer whose broker is gone (a closed port) fails over and over: every failure is
// counted, the log gets the first one with its cause at once and then at most one per
// logEvery, saying how many it left out; a failed commit is counted and logged apart.
func TestConsumerErrorsAreCountedAndLoggedRateLimited(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused

	core, logs := observer.New(zapcore.WarnLevel)
	reg := prometheus.NewRegistry()
	ce := newConsumerErrors(reg, zap.New(core))
	var clock atomic.Int64 // the reporter's clock, moved by the test
	clock.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	ce.now = func() time.Time { return time.Unix(0, clock.Load()) }

	c := kafka.NewConsumer([]string{addr}, "test-group", "test-topic", kafka.ConsumerOptions{OnError: ce.reporter("test-group")})
	defer c.Close()
	fetch := ce.total.WithLabelValues("test-group", "fetch")
	waitCount := func(min float64) {
		t.Helper()
		for deadline := time.Now().Add(20 * time.Second); value(fetch) < min; {
			if time.Now().After(deadline) {
				t.Fatalf("fetch failures counted: %v, want at least %v", value(fetch), min)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitCount(3)
	fetchLogs := func() []observer.LoggedEntry {
		return logs.FilterMessage("kafka consumer fetch failed; retrying").AllUntimed()
	}
	if got := fetchLogs(); len(got) != 1 {
		t.Fatalf("%d fetch failures gave %d log lines within logEvery, want 1: %v", int(value(fetch)), len(got), got)
	}
	first := fetchLogs()[0].ContextMap()
	if cause, _ := first["cause"].(string); !strings.Contains(cause, addr) || !strings.Contains(cause, "connection refused") {
		t.Errorf("the logged cause does not name the broker and the refusal: %q", cause)
	}
	if first["group"] != "test-group" || first["notLoggedSinceLast"] != int64(0) {
		t.Errorf("first log line: %v", first)
	}

	clock.Add(int64(consumerErrorLogEvery))
	before := value(fetch)
	waitCount(before + 1)
	got := fetchLogs()
	if len(got) != 2 {
		t.Fatalf("after logEvery: %d fetch log lines, want 2", len(got))
	}
	if held, _ := got[1].ContextMap()["notLoggedSinceLast"].(int64); held < 2 {
		t.Errorf("second log line says %d failures were not logged; at least 2 were (%v counted before it)", held, before)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := c.Commit(ctx, queue.Record{Topic: "test-topic", Partition: 0, Offset: 7}); err == nil {
		t.Fatal("commit without a broker succeeded")
	}
	if n := value(ce.total.WithLabelValues("test-group", "commit")); n != 1 {
		t.Errorf("commit failures counted: %v, want 1", n)
	}
	if n := len(logs.FilterMessage("kafka consumer commit failed; retrying").All()); n != 1 {
		t.Errorf("commit failure log lines: %d, want 1", n)
	}

	// A commit cut short because the caller stops is no failure.
	stopped, stop := context.WithCancel(context.Background())
	stop()
	if err := c.Commit(stopped, queue.Record{Topic: "test-topic", Partition: 0, Offset: 8}); err == nil {
		t.Fatal("commit on a cancelled context succeeded")
	}
	if n := value(ce.total.WithLabelValues("test-group", "commit")); n != 1 {
		t.Errorf("a cancelled commit was counted as a failure: %v", n)
	}
}

// value reads a counter.
func value(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}
