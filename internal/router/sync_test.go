package router

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/qualtrics"
	"github.com/qgate/qgate/internal/queue"
	"github.com/qgate/qgate/internal/store"
	"github.com/qgate/qgate/internal/update"
)

// flakyStore is the real store whose configuration reads fail while fails > 0.
type flakyStore struct {
	*store.DB
	mu     sync.Mutex
	fails  int // reads still to fail; -1: every read fails
	failed int
}

func (f *flakyStore) ConfigGeneration(ctx context.Context) (int64, error) {
	f.mu.Lock()
	if f.fails != 0 {
		if f.fails > 0 {
			f.fails--
		}
		f.failed++
		f.mu.Unlock()
		return 0, errors.New("store unreachable")
	}
	f.mu.Unlock()
	return f.DB.ConfigGeneration(ctx)
}

// failing reports whether reads are still set to fail, and how many have failed.
func (f *flakyStore) state() (failing bool, failed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fails != 0, f.failed
}

// chanSource yields the records sent on recs and counts commits.
type chanSource struct {
	recs    chan queue.Record
	mu      sync.Mutex
	commits int
}

func (s *chanSource) Records() <-chan queue.Record { return s.recs }

func (s *chanSource) Commit(context.Context, ...queue.Record) error {
	s.mu.Lock()
	s.commits++
	s.mu.Unlock()
	return nil
}

// sink is the router's publisher and status writer. Each call records whether the store's
// configuration reads were still failing at that moment.
type sink struct {
	flaky       *flakyStore
	mu          sync.Mutex
	msgs        []queue.Message
	batches     []delivery.Batch
	whileFailed int
	published   chan struct{}
}

func (s *sink) Publish(_ context.Context, msgs []queue.Message) error {
	failing, _ := s.flaky.state()
	s.mu.Lock()
	s.msgs = append(s.msgs, msgs...)
	if failing {
		s.whileFailed++
	}
	s.mu.Unlock()
	s.published <- struct{}{}
	return nil
}

func (s *sink) Write(_ context.Context, b delivery.Batch) error {
	failing, _ := s.flaky.state()
	s.mu.Lock()
	s.batches = append(s.batches, b)
	if failing {
		s.whileFailed++
	}
	s.mu.Unlock()
	return nil
}

// syncRig is one router on a real SQLite store with its own registry, and the service of
// another node on the same store, whose changes the router's registry learns of only from the
// store (no poll runs).
type syncRig struct {
	flaky  *flakyStore
	src    *chanSource
	out    *sink
	other  *destination.Service
	prom   *prometheus.Registry
	router *Router
}

// counter returns the value of the router's counter called name.
func (r *syncRig) counter(t *testing.T, name string) float64 {
	t.Helper()
	mfs, err := r.prom.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func newSyncRig(t *testing.T) *syncRig {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, "", filepath.Join(t.TempDir(), "data"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	box, err := destination.NewBox(key)
	if err != nil {
		t.Fatal(err)
	}
	flaky := &flakyStore{DB: db}
	reg := destination.NewRegistry(flaky, box, nil)
	if err := reg.Load(ctx); err != nil {
		t.Fatal(err)
	}
	r := &syncRig{
		flaky: flaky,
		src:   &chanSource{recs: make(chan queue.Record, 10)},
		other: &destination.Service{Store: db, Box: box, Policy: qualtrics.HostPolicy{AllowedHosts: []string{"*.qualtrics.com"}}, Now: time.Now},
	}
	r.out = &sink{flaky: flaky, published: make(chan struct{}, 10)}
	r.prom = prometheus.NewRegistry()
	r.router = New(r.src, reg, r.out, r.out, zap.NewNop(), NewMetrics(r.prom))
	return r
}

func ptr[T any](v T) *T { return &v }

// create makes a destination for audience seg-1 through the other node.
func (r *syncRig) create(t *testing.T) destination.Destination {
	t.Helper()
	d, err := r.other.Create(context.Background(), destination.Request{
		Name: ptr("nps"), URL: ptr("https://sjc1.qualtrics.com/inbound-event/v1/events/json/triggers?urlTokenId=abc"),
		Username: ptr("api-user"), APIToken: ptr("tok-0123456789"),
		IdentityMappings: &[]destination.IdentityMapping{{Source: "Email", Target: "email"}},
		Audiences:        &[]string{"seg-1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// record is an accepted update of a member of seg-1.
func record(offset int64) queue.Record {
	prof := `{"identityMap":{"Email":[{"id":"eve@example.com"}]},"segmentMembership":{"ups":{"seg-1":{"lastQualificationTime":"2024-05-06T07:08:09Z","status":"realized"}}}}`
	env := update.Envelope{V: 1, UpdateID: update.NewID(), ReceivedAt: time.Now(), ProfileKey: "pk-eve", Profile: json.RawMessage(prof)}
	return queue.Record{Topic: "updates", Partition: 0, Offset: offset, Value: update.AppendEncode(nil, env)}
}

// run starts the router; the returned function stops it and waits for Run to return.
func (r *syncRig) run(t *testing.T) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = r.router.Run(ctx)
	}()
	return func() {
		cancel()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	}
}

func (r *syncRig) awaitPublish(t *testing.T) {
	t.Helper()
	select {
	case <-r.out.published:
	case <-time.After(10 * time.Second):
		t.Fatal("the batch was not published within 10 s")
	}
}

// checkRoutedTo asserts that the one update published was routed to d, with the generation
// of d's creation or later on its job.
func (r *syncRig) checkRoutedTo(t *testing.T, d destination.Destination) {
	t.Helper()
	created, err := r.flaky.DB.GetDestination(context.Background(), d.ID, false)
	if err != nil {
		t.Fatal(err)
	}
	r.out.mu.Lock()
	defer r.out.mu.Unlock()
	if len(r.out.msgs) != 1 {
		t.Fatalf("%d jobs queued, want 1 for the destination created before the update was routed", len(r.out.msgs))
	}
	job, err := delivery.DecodeJob(r.out.msgs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if job.DestinationID != d.ID || job.Generation < created.Generation {
		t.Fatalf("job for %s at generation %d, want %s at %d or later", job.DestinationID, job.Generation, d.ID, created.Generation)
	}
	if b := r.out.batches; len(b) != 1 || len(b[0].Events) != 0 || len(b[0].Routed) != 1 || b[0].Routed[0].Status != delivery.Pending ||
		len(b[0].Updates) != 1 || len(b[0].Updates[0].Queued) != 1 || b[0].Updates[0].Queued[0] != d.ID {
		t.Fatalf("recorded %+v, want the update with one pending delivery", r.out.batches)
	}
	// The job carries the identity hashes, so that its outcome can write the whole row.
	if p := r.out.batches[0].Routed[0]; job.EmailHash == "" || job.EmailHash != p.EmailHash || job.ExternalIDHash != p.ExternalIDHash {
		t.Errorf("job's identity hashes %q %q, want the pending row's %q %q", job.EmailHash, job.ExternalIDHash, p.EmailHash, p.ExternalIDHash)
	}
}

// A destination created through another node just before an update is routed receives it:
// the router reads the configuration generation before each batch. Without that read the
// router's registry (no poll here) does not know the destination and the update is routed
// with no delivery, silently.
func TestRouterAppliesChangesCommittedBeforeTheBatch(t *testing.T) {
	r := newSyncRig(t)
	stop := r.run(t)
	defer stop()
	d := r.create(t)
	r.src.recs <- record(0)
	r.awaitPublish(t)
	r.checkRoutedTo(t, d)
}

// A failing configuration read is retried with backoff, and the batch is neither recorded nor
// queued (nor committed) with the stale snapshot meanwhile.
func TestRouterRetriesAFailedConfigurationRead(t *testing.T) {
	r := newSyncRig(t)
	r.flaky.fails = 3
	stop := r.run(t)
	defer stop()
	d := r.create(t)
	r.src.recs <- record(0)
	r.awaitPublish(t)
	if _, failed := r.flaky.state(); failed != 3 {
		t.Fatalf("%d failed reads, want 3 (retried until one succeeded)", failed)
	}
	if n := r.counter(t, "qgate_router_config_sync_failures_total"); n != 3 {
		t.Errorf("qgate_router_config_sync_failures_total = %v, want 3", n)
	}
	r.out.mu.Lock()
	whileFailed := r.out.whileFailed
	r.out.mu.Unlock()
	if whileFailed != 0 {
		t.Fatalf("%d writes or publishes while the configuration could not be read", whileFailed)
	}
	r.checkRoutedTo(t, d)
}

// While the configuration cannot be read the batch waits; stopping then routes, records and
// commits nothing (the batch is read again after the restart).
func TestRouterStopsWithoutRoutingWhileTheConfigurationCannotBeRead(t *testing.T) {
	r := newSyncRig(t)
	r.flaky.fails = -1
	stop := r.run(t)
	r.create(t)
	r.src.recs <- record(0)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, failed := r.flaky.state(); failed >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the configuration read was not retried 3 times within 10 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	r.out.mu.Lock()
	defer r.out.mu.Unlock()
	r.src.mu.Lock()
	defer r.src.mu.Unlock()
	if len(r.out.msgs) != 0 || len(r.out.batches) != 0 || r.src.commits != 0 {
		t.Fatalf("while unreadable: %d jobs, %d batches, %d commits; want none", len(r.out.msgs), len(r.out.batches), r.src.commits)
	}
}
