package dispatch

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/qualtrics"
	"github.com/qgate/qgate/internal/queue"
	"github.com/qgate/qgate/internal/store"
)

// In-memory doubles for the dispatcher's ports, for tests that run a real Dispatcher inside a
// testing/synctest bubble (fake clock). Every channel they use must be created inside the bubble,
// so a rig is built by the test function passed to synctest.Test.

// memStore is both the StatusWriter and the Store: one map of parked rows and one of statuses,
// with the same semantics as internal/store (a terminal status is never replaced; re-parking
// keeps the first attempt time, sequence and job).
type memStore struct {
	mu     sync.Mutex
	events []delivery.Event
	status map[string]delivery.Status
	parked map[string]store.Parked
	alerts []store.Alert
	// afterParkedProfiles, if set, runs after ParkedProfiles has read (outside the lock): what
	// happens "during the read" that the read missed.
	afterParkedProfiles func()
}

func newMemStore() *memStore {
	return &memStore{status: map[string]delivery.Status{}, parked: map[string]store.Parked{}}
}

func (s *memStore) Write(_ context.Context, b store.Batch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range b.Events {
		s.events = append(s.events, ev)
		cur := s.status[ev.DeliveryID]
		if cur.Terminal() || (ev.Status == delivery.Pending && cur != "") {
			continue
		}
		s.status[ev.DeliveryID] = ev.Status
	}
	for _, p := range b.Park {
		if p.FirstAttemptAt != nil {
			f := *p.FirstAttemptAt
			p.FirstAttemptAt = &f
		}
		if old, ok := s.parked[p.DeliveryID]; ok {
			old.DueAt, old.Attempts = p.DueAt, p.Attempts
			if old.FirstAttemptAt == nil {
				old.FirstAttemptAt = p.FirstAttemptAt
			}
			p = old
		}
		p.Job = slices.Clone(p.Job)
		s.parked[p.DeliveryID] = p
	}
	for _, id := range b.Unpark {
		delete(s.parked, id)
	}
	s.alerts = append(s.alerts, b.Alerts...)
	return nil
}

func (s *memStore) ParkedHeads(_ context.Context, destID string, now time.Time, limit int) ([]store.Parked, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	minSeq := map[string]int64{}
	for _, p := range s.parked {
		if m, ok := minSeq[p.ProfileKey]; p.DestinationID == destID && (!ok || p.Seq < m) {
			minSeq[p.ProfileKey] = p.Seq
		}
	}
	var out []store.Parked
	for _, p := range s.parked {
		if p.DestinationID == destID && !p.DueAt.After(now) && p.Seq == minSeq[p.ProfileKey] {
			p.Job = slices.Clone(p.Job)
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].DueAt.Equal(out[j].DueAt) {
			return out[i].DueAt.Before(out[j].DueAt)
		}
		return out[i].Seq < out[j].Seq
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (s *memStore) ParkedProfiles(_ context.Context, destID string) (map[string]int, error) {
	s.mu.Lock()
	out := map[string]int{}
	for _, p := range s.parked {
		if p.DestinationID == destID {
			out[p.ProfileKey]++
		}
	}
	after := s.afterParkedProfiles
	s.mu.Unlock()
	if after != nil {
		after()
	}
	return out, nil
}

func (s *memStore) CountParked(_ context.Context, destID string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, p := range s.parked {
		if p.DestinationID == destID {
			n++
		}
	}
	return n, nil
}

func (s *memStore) ParkedDestinations(context.Context) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	seen := map[string]bool{}
	var out []string
	for _, p := range s.parked {
		if !seen[p.DestinationID] {
			seen[p.DestinationID] = true
			out = append(out, p.DestinationID)
		}
	}
	return out, nil
}

// Claim always succeeds: these tests run one node.
func (s *memStore) Claim(context.Context, string, string, time.Time, time.Duration) (bool, error) {
	return true, nil
}

func (s *memStore) Release(context.Context, string, string) error { return nil }

func (s *memStore) DeliveryStatus(_ context.Context, id string) (delivery.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status[id], nil
}

func (s *memStore) Finished(_ context.Context, ids []string) (map[string]bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]bool{}
	for _, id := range ids {
		if s.status[id].Terminal() {
			out[id] = true
		}
	}
	return out, nil
}

func (s *memStore) statusOf(id string) delivery.Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status[id]
}

// eventsOf returns a delivery's events in the order they were written.
func (s *memStore) eventsOf(id string) []delivery.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []delivery.Event
	for _, ev := range s.events {
		if ev.DeliveryID == id {
			out = append(out, ev)
		}
	}
	return out
}

func (s *memStore) parkedRow(id string) (store.Parked, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.parked[id]
	return p, ok
}

func (s *memStore) alertKinds() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, a := range s.alerts {
		out = append(out, a.Kind)
	}
	return out
}

// memSource feeds records through a buffered channel and remembers the highest committed offset.
type memSource struct {
	recs chan queue.Record

	mu        sync.Mutex
	committed int64
}

func (s *memSource) Records() <-chan queue.Record { return s.recs }

func (s *memSource) Commit(_ context.Context, recs ...queue.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		s.committed = max(s.committed, r.Offset)
	}
	return nil
}

func (s *memSource) committedOffset() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.committed
}

// memRegistry holds destinations; set replaces one (e.g. a new rate limit).
type memRegistry struct {
	mu      sync.Mutex
	dests   map[string]destination.Destination
	changed chan struct{}
}

func (r *memRegistry) Get(id string) (destination.Destination, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.dests[id]
	return d, ok
}

// Await: the fake is always up to date.
func (r *memRegistry) Await(context.Context, int64) error { return nil }

func (r *memRegistry) Changed() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changed
}

func (r *memRegistry) setRate(id string, perMin int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.dests[id]
	d.RateLimitPerMinute = perMin
	r.dests[id] = d
	close(r.changed)
	r.changed = make(chan struct{})
}

// sendRec is one call of the fake sender.
type sendRec struct {
	at  time.Time // when the request went out (fake clock)
	id  string    // delivery ID (the Idempotency-Key)
	n   int       // the nth send of this delivery
	all int       // the nth send overall
}

// reply is what a scripted send answers, after an optional (fake-clock) latency.
type reply struct {
	res     qualtrics.Result
	latency time.Duration
}

// fakeSender stands in for the Qualtrics client: script decides each answer from the delivery
// ID, that delivery's attempt number and the overall call number.
type fakeSender struct {
	script func(id string, n, all int) reply

	mu          sync.Mutex
	sends       []sendRec
	perID       map[string]int
	inFlight    int
	maxInFlight int
}

func (f *fakeSender) Send(_ context.Context, req qualtrics.Request) qualtrics.Result {
	f.mu.Lock()
	f.perID[req.IdempotencyKey]++
	s := sendRec{at: time.Now(), id: req.IdempotencyKey, n: f.perID[req.IdempotencyKey], all: len(f.sends) + 1}
	f.sends = append(f.sends, s)
	f.inFlight++
	f.maxInFlight = max(f.maxInFlight, f.inFlight)
	f.mu.Unlock()

	r := f.script(s.id, s.n, s.all)
	if r.latency > 0 {
		time.Sleep(r.latency) // fake time: the bubble's clock
	}
	r.res.Latency = r.latency

	f.mu.Lock()
	f.inFlight--
	f.mu.Unlock()
	return r.res
}

func (f *fakeSender) all() []sendRec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sends)
}

func (f *fakeSender) of(id string) []sendRec {
	var out []sendRec
	for _, s := range f.all() {
		if s.id == id {
			out = append(out, s)
		}
	}
	return out
}

func (f *fakeSender) maxConcurrent() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.maxInFlight
}

func (f *fakeSender) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sends)
}

func ok200() reply {
	return reply{res: qualtrics.Result{Outcome: qualtrics.Outcome{Class: qualtrics.Delivered, Reason: qualtrics.ReasonOK, Status: 200}}}
}

func unavailable(retryAfter time.Duration) reply {
	return reply{res: qualtrics.Result{Outcome: qualtrics.Outcome{Class: qualtrics.Retryable, Reason: qualtrics.ReasonServerError, Status: 503, RetryAfter: retryAfter, Excerpt: "unavailable"}}}
}

func tooMany(retryAfter time.Duration) reply {
	return reply{res: qualtrics.Result{Outcome: qualtrics.Outcome{Class: qualtrics.Retryable, Reason: qualtrics.ReasonRateLimited, Status: 429, RetryAfter: retryAfter}}}
}

func unauthorized() reply {
	return reply{res: qualtrics.Result{Outcome: qualtrics.Outcome{Class: qualtrics.DestinationFault, Reason: qualtrics.ReasonUnauthorized, Status: 401, Excerpt: "bad token"}}}
}

const rigDest = "dst_timing"

// rig runs a real Dispatcher, with the doubles above, inside the current synctest bubble.
type rig struct {
	t    *testing.T
	d    *Dispatcher
	src  *memSource
	reg  *memRegistry
	st   *memStore
	snd  *fakeSender
	stop context.CancelFunc
	done chan struct{}
	seq  int64
}

// startRig must be called inside a synctest bubble; the caller defers r.close().
func startRig(t *testing.T, opts Options, perMin int, script func(id string, n, all int) reply) *rig {
	t.Helper()
	r := &rig{t: t,
		src: &memSource{recs: make(chan queue.Record, 1024)},
		reg: &memRegistry{changed: make(chan struct{}), dests: map[string]destination.Destination{
			rigDest: {ID: rigDest, Name: "timing", URL: "https://example.invalid/events", Username: "u", Token: "t", RateLimitPerMinute: perMin, Enabled: true},
		}},
		st:   newMemStore(),
		snd:  &fakeSender{script: script, perID: map[string]int{}},
		done: make(chan struct{}),
	}
	opts.NodeID = "node-timing"
	r.d = New(r.src, r.reg, r.snd, r.st, r.st, zap.NewNop(), NewMetrics(prometheus.NewRegistry()), opts)
	ctx, cancel := context.WithCancel(context.Background())
	r.stop = cancel
	go func() {
		defer close(r.done)
		if err := r.d.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	return r
}

// offer publishes one delivery job for profile and returns its delivery ID.
func (r *rig) offer(profile string) string {
	r.t.Helper()
	r.seq++
	id := fmt.Sprintf("dlv_%04d", r.seq)
	b, err := delivery.EncodeJob(delivery.Job{DeliveryID: id, UpdateID: "upd_" + id, DestinationID: rigDest, ProfileKey: profile,
		ReceivedAt: time.Now(), Payload: json.RawMessage(fmt.Sprintf(`{"profile":%q}`, profile))})
	if err != nil {
		r.t.Fatal(err)
	}
	r.src.recs <- queue.Record{Topic: "qgate.delivery-jobs", Partition: 0, Offset: r.seq, Key: []byte(rigDest), Value: b}
	return id
}

// close stops the dispatcher and waits for Run to return (all its goroutines end with it).
func (r *rig) close() {
	r.stop()
	<-r.done
}

// advance lets fake time pass (every goroutine of the bubble runs as it would), then waits until
// the bubble is idle at the new instant.
func advance(d time.Duration) {
	time.Sleep(d)
	synctest.Wait()
}

// advanceTo is advance up to an absolute fake time.
func advanceTo(at time.Time) {
	if d := time.Until(at); d > 0 {
		time.Sleep(d)
	}
	synctest.Wait()
}

// profilesOnDistinctWorkers returns n profile keys that map to n different workers of a lane
// with the given number of workers, so that no profile ever waits behind another one's worker.
func profilesOnDistinctWorkers(n, workers int) []string {
	used := map[int]bool{}
	var out []string
	for i := 0; len(out) < n; i++ {
		k := fmt.Sprintf("profile-%d", i)
		if w := workerOf(k, workers); !used[w] {
			used[w] = true
			out = append(out, k)
		}
	}
	return out
}
