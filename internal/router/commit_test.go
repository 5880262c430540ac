package router

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/queue"
)

// commitSource records commits; it fails while failing is set.
type commitSource struct {
	mu      sync.Mutex
	failing bool
	calls   int
	commits [][]queue.Record
}

func (s *commitSource) Records() <-chan queue.Record { return nil }

func (s *commitSource) Commit(_ context.Context, recs ...queue.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.failing {
		return errors.New("coordinator not available")
	}
	s.commits = append(s.commits, recs)
	return nil
}

func (s *commitSource) fail(on bool) {
	s.mu.Lock()
	s.failing = on
	s.mu.Unlock()
}

// committed returns the highest offset committed per partition of topic "t".
func (s *commitSource) committed() map[int]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int]int64{}
	for _, c := range s.commits {
		for _, r := range c {
			if r.Value != nil || r.Key != nil {
				panic("commit carries a record's key or value")
			}
			out[r.Partition] = max(out[r.Partition], r.Offset)
		}
	}
	return out
}

func recs(partition int, from, to int64) []queue.Record {
	var out []queue.Record
	for o := from; o <= to; o++ {
		out = append(out, queue.Record{Topic: "t", Partition: partition, Offset: o, Value: []byte("v")})
	}
	return out
}

// Handled batches are committed in the background as the highest offset per partition; a
// failing commit is retried with backoff and takes in what was handled meanwhile; close
// commits what is still owed.
func TestCommitterCoalescesRetriesAndFlushes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &commitSource{}
		r := New(src, nil, nil, nil, zap.NewNop(), NewMetrics(prometheus.NewRegistry()))
		c := newCommitter(r)

		c.add(append(recs(0, 0, 9), recs(1, 0, 4)...))
		synctest.Wait()
		if got := src.committed(); got[0] != 9 || got[1] != 4 || len(src.commits[0]) != 2 {
			t.Fatalf("first commit %v (%d records), want p0→9, p1→4 in 2 records", got, len(src.commits[0]))
		}

		src.fail(true)
		c.add(recs(0, 10, 19))
		synctest.Wait() // the commit failed and waits for its backoff
		c.add(recs(1, 5, 7))
		c.add(recs(0, 20, 29))
		src.fail(false)
		time.Sleep(10 * time.Second) // past any backoff (fake clock)
		synctest.Wait()
		if got := src.committed(); got[0] != 29 || got[1] != 7 {
			t.Fatalf("after the failure: %v, want p0→29, p1→7", got)
		}
		if calls := src.calls; calls < 3 {
			t.Errorf("%d commit calls, want the failed one retried", calls)
		}

		c.add(recs(2, 0, 3))
		c.close()
		if got := src.committed(); got[2] != 3 {
			t.Fatalf("close did not commit what was owed: %v", got)
		}
	})
}

// While stopping, a commit that keeps failing is given up after 10 s.
func TestCommitterGivesUpTenSecondsAfterClose(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := &commitSource{failing: true}
		r := New(src, nil, nil, nil, zap.NewNop(), NewMetrics(prometheus.NewRegistry()))
		c := newCommitter(r)
		c.add(recs(0, 0, 1))
		start := time.Now()
		c.close()
		if took := time.Since(start); took < 10*time.Second || took > 11*time.Second {
			t.Errorf("close took %v, want about 10s", took)
		}
		if len(src.committed()) != 0 {
			t.Errorf("committed while failing")
		}
	})
}
