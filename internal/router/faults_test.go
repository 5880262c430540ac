package router

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/queue"
	"github.com/qgate/qgate/internal/update"
)

// A status store that fails: erroring, then hanging until the caller gives up. The router must
// neither commit a batch nor drop it while its record is not durable; once the store answers
// again, every update is recorded and queued, and only then committed.

// fltStatus fails every write while mode is "error", blocks each write until its context
// ends while mode is "hang", and records batches otherwise.
type fltStatus struct {
	mu      sync.Mutex
	mode    string
	calls   int
	written []delivery.Batch
}

var errFltStore = errors.New("store unreachable")

func (s *fltStatus) set(mode string) {
	s.mu.Lock()
	s.mode = mode
	s.mu.Unlock()
}

func (s *fltStatus) Write(ctx context.Context, b delivery.Batch) error {
	s.mu.Lock()
	s.calls++
	mode := s.mode
	s.mu.Unlock()
	switch mode {
	case "error":
		return errFltStore
	case "hang":
		// The store's own bound on one write (StatusWriter applies with a 30 s timeout).
		tctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		<-tctx.Done()
		return tctx.Err()
	}
	s.mu.Lock()
	s.written = append(s.written, b)
	s.mu.Unlock()
	return nil
}

func (s *fltStatus) updates() map[string]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	for _, b := range s.written {
		for _, u := range b.Updates {
			out[u.UpdateID] = true
		}
	}
	return out
}

// fltSource hands out records from a channel and records commits.
type fltSource struct {
	recs    chan queue.Record
	mu      sync.Mutex
	commits map[int]int64
}

func (s *fltSource) Records() <-chan queue.Record { return s.recs }

func (s *fltSource) Commit(_ context.Context, recs ...queue.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		s.commits[r.Partition] = max(s.commits[r.Partition], r.Offset)
	}
	return nil
}

func (s *fltSource) committed(partition int) (int64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	off, ok := s.commits[partition]
	return off, ok
}

// fltPublisher keeps published messages.
type fltPublisher struct {
	mu   sync.Mutex
	msgs []queue.Message
}

func (p *fltPublisher) Publish(_ context.Context, msgs []queue.Message) error {
	p.mu.Lock()
	p.msgs = append(p.msgs, msgs...)
	p.mu.Unlock()
	return nil
}

type fltDests []destination.Destination

func (d fltDests) Routable() []destination.Destination { return d }

func (d fltDests) Sync(context.Context) (int64, error) { return 1, nil }

func fltRecord(t *testing.T, offset int64, email string) (queue.Record, string) {
	t.Helper()
	id := update.NewID()
	prof := fmt.Sprintf(`{"identityMap":{"Email":[{"id":%q}]},"segmentMembership":{"ups":{"a1":{"lastQualificationTime":"2023-09-05T10:43:55Z","status":"realized"}}}}`, email)
	v := update.AppendEncode(nil, update.Envelope{V: update.Version, UpdateID: id, ReceivedAt: time.Now(), ProfileKey: email, Profile: []byte(prof)})
	return queue.Record{Topic: "profiles", Partition: 0, Offset: offset, Key: []byte(email), Value: v}, id
}

func TestRouterNeitherCommitsNorDropsWhileTheStoreFails(t *testing.T) {
	for _, mode := range []string{"error", "hang"} {
		t.Run(mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				status := &fltStatus{mode: mode}
				src := &fltSource{recs: make(chan queue.Record, 16), commits: map[int]int64{}}
				pub := &fltPublisher{}
				dests := fltDests{{ID: "dst_1", Enabled: true, Audiences: []string{"a1"},
					IdentityMappings: []destination.IdentityMapping{{Source: "Email", Target: destination.TargetEmail}}}}
				r := New(src, dests, pub, status, zap.NewNop(), NewMetrics(prometheus.NewRegistry()))
				ctx, cancel := context.WithCancel(context.Background())
				done := make(chan struct{})
				go func() { defer close(done); _ = r.Run(ctx) }()

				var ids []string
				for i := range 3 {
					rec, id := fltRecord(t, int64(i), fmt.Sprintf("p%d@example.com", i))
					src.recs <- rec
					ids = append(ids, id)
				}
				// A minute of store failure (fake clock): retried, never committed.
				time.Sleep(time.Minute)
				synctest.Wait()
				if off, ok := src.committed(0); ok {
					t.Fatalf("committed offset %d while the store failed", off)
				}
				status.mu.Lock()
				calls := status.calls
				status.mu.Unlock()
				if calls < 2 {
					t.Fatalf("%d status writes in a minute of failure, want retries", calls)
				}

				status.set("")
				time.Sleep(10 * time.Second) // past the router's longest backoff (6.4 s)
				synctest.Wait()
				got := status.updates()
				for _, id := range ids {
					if !got[id] {
						t.Errorf("update %s not recorded after the store came back", id)
					}
				}
				if off, ok := src.committed(0); !ok || off < 2 {
					t.Errorf("committed %d (%v) after recovery, want offset 2", off, ok)
				}
				pub.mu.Lock()
				queued := len(pub.msgs)
				pub.mu.Unlock()
				if queued < len(ids) {
					t.Errorf("%d jobs queued, want at least %d", queued, len(ids))
				}
				cancel()
				<-done
			})
		})
	}
}
