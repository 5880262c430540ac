package app

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/receiver"
	"github.com/qgate/qgate/internal/store"
)

type nopCloser struct{}

func (nopCloser) Close() error { return nil }

// A router slow to stop (its committer retrying for 5 s) does not eat the dispatcher's share of
// the shutdown bound: the dispatcher is asked to stop at once and finishes its 500 ms in-flight
// attempt within the 2 s bound; only the router is reported late.
func TestStopStagesGivesTheDispatcherItsShare(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		a := &App{log: zap.NewNop()}
		start := time.Now()
		routerReturned := make(chan struct{})
		a.startStage("router", nopCloser{}, func(ctx context.Context) error {
			defer close(routerReturned)
			<-ctx.Done()
			time.Sleep(5 * time.Second)
			return nil
		})
		var askedAfter atomic.Int64 // a time.Duration
		var finished atomic.Bool
		dispatcherReturned := make(chan struct{})
		a.startStage("dispatcher", nopCloser{}, func(ctx context.Context) error {
			defer close(dispatcherReturned)
			<-ctx.Done()
			askedAfter.Store(int64(time.Since(start)))
			time.Sleep(500 * time.Millisecond) // the in-flight attempt and the final commit
			finished.Store(true)
			return nil
		})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		ended, err := a.stopStages(ctx)
		took := time.Since(start)
		if ended {
			t.Error("stopStages reports every stage ended although the router was still stopping")
		}
		if err == nil || !strings.Contains(err.Error(), "router did not stop in time") || strings.Contains(err.Error(), "dispatcher") {
			t.Errorf("error: %v; want only the router reported late", err)
		}
		if !finished.Load() || askedAfter.Load() != 0 {
			t.Errorf("dispatcher asked to stop after %s, finished within the bound: %v; want asked at once and finished",
				time.Duration(askedAfter.Load()), finished.Load())
		}
		if took != 2*time.Second {
			t.Errorf("stopStages took %s, want the 2s bound", took)
		}
		<-routerReturned
		<-dispatcherReturned
	})
}

// A stage still running when the shutdown bound passes keeps the status writer and the store
// open: its late write is applied, instead of meeting a closed writer.
func TestShutdownLeavesTheStatusWriterToAStageStillRunning(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, "", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	a := &App{log: zap.NewNop(), store: db, status: store.NewStatusWriter(db),
		receiver: receiver.New(nil, receiver.Options{}, receiver.NewMetrics(prometheus.NewRegistry()))}
	release, wrote := make(chan struct{}), make(chan error, 1)
	up := delivery.Update{UpdateID: "01a2b3c4-0000-7000-8000-000000000001", ProfileKey: "p1", ReceivedAt: time.Now().UTC(), RoutedAt: time.Now().UTC()}
	a.startStage("dispatcher", nopCloser{}, func(ctx context.Context) error {
		<-ctx.Done()
		<-release // still finishing after the shutdown bound
		wrote <- a.status.Write(context.Background(), delivery.Batch{Updates: []delivery.Update{up}})
		return nil
	})
	sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := a.Shutdown(sctx); err == nil || !strings.Contains(err.Error(), "dispatcher did not stop in time") {
		t.Fatalf("shutdown: %v; want the dispatcher reported late", err)
	}
	close(release)
	if err := <-wrote; err != nil {
		t.Fatalf("the late stage's status write: %v", err)
	}
	if got, _, err := db.GetUpdate(ctx, up.UpdateID); err != nil || got.UpdateID != up.UpdateID {
		t.Fatalf("the late write is not in the store: %+v, %v", got, err)
	}
	a.closeAll()
}

// A stage that returns without being asked to (its consumer's records closed, say) is reported
// on stageDied, which makes Run shut the node down and return the error: a node must not keep
// accepting updates that nothing routes. A stage asked to stop is not reported.
func TestAStageStoppingByItselfIsReported(t *testing.T) {
	a := &App{log: zap.NewNop(), stageDied: make(chan error, 2)}
	a.startStage("dispatcher", nopCloser{}, func(ctx context.Context) error { <-ctx.Done(); return nil })
	a.startStage("router", nopCloser{}, func(ctx context.Context) error { return nil })
	select {
	case err := <-a.stageDied:
		if err == nil || !strings.Contains(err.Error(), "router stopped by itself") {
			t.Fatalf("reported %v, want the router named", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a router that returned by itself was not reported")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ended, err := a.stopStages(ctx); !ended || err != nil {
		t.Fatalf("stopStages: ended %v, %v", ended, err)
	}
	select {
	case err := <-a.stageDied:
		t.Fatalf("a stage asked to stop was reported: %v", err)
	default:
	}
}
