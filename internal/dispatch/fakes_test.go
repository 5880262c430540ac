package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
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
)

// In-memory doubles for the dispatcher's ports, for tests that run a real Dispatcher inside a
// testing/synctest bubble (fake clock). Every channel they use must be created inside the bubble,
// so a rig is built by the test function passed to synctest.Test.

// memStore is both the StatusWriter and the Store: one map of parked rows and one of statuses,
// with the same semantics as internal/store (a terminal status is never replaced; re-parking
// keeps the first attempt time, sequence and job), and destination claims that one node holds at
// a time until they expire or are released. One memStore may serve several dispatchers (nodes).
//
// It can fail on command: fault decides, for every call, whether it errors, hangs until its
// context ends (a store that does not answer) or — for Claim — is refused.
type memStore struct {
	mu     sync.Mutex
	events []delivery.Event
	status map[string]delivery.Status
	parked map[string]delivery.Parked
	alerts []delivery.Alert
	claims map[string]claimRow // destination → holder
	calls  map[string]int      // op, "op:node" and "op@destination" → calls made
	// fault, if set, is asked before every call; see storeFault.
	fault func(c storeCall) storeFault
	// hanging counts calls blocked by a hang fault right now.
	hanging int
	// afterParkedProfiles, if set, runs after ParkedProfiles has read (outside the lock): what
	// happens "during the read" that the read missed.
	afterParkedProfiles func()
	// afterCountParked is the same for CountParked.
	afterCountParked func()
}

type claimRow struct {
	node   string
	until  time.Time
	wanted time.Time // when another node last asked for it
}

// storeCall describes one call of a memStore to its fault function.
type storeCall struct {
	op    string          // one of the op constants
	dest  string          // the destination it concerns ("" for Write, Finished, DeliveryStatus, ParkedDestinations)
	node  string          // Claim and Release: the calling node
	batch *delivery.Batch // Write: what it would apply
}

// storeFault is what one call of a memStore does instead of succeeding.
type storeFault struct {
	err    error // fail with it, changing nothing
	hang   bool  // block until the call's context ends, then fail with its error
	refuse bool  // Claim only: answer false (another node holds the destination)
}

var errStoreDown = errors.New("store unreachable (injected)")

// The ops a fault is asked about.
const (
	opWrite, opHeads, opProfiles, opCount, opDestinations = "write", "parkedHeads", "parkedProfiles", "countParked", "parkedDestinations"
	opClaim, opRelease, opStatus, opFinished              = "claim", "release", "deliveryStatus", "finished"
)

func newMemStore() *memStore {
	return &memStore{status: map[string]delivery.Status{}, parked: map[string]delivery.Parked{}, claims: map[string]claimRow{}, calls: map[string]int{}}
}

// setFault replaces the fault function (nil: every call succeeds).
func (s *memStore) setFault(f func(c storeCall) storeFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// outage makes every call fail from now until until: with errStoreDown, or by hanging until
// its context ends (hang).
func (s *memStore) outage(until time.Time, hang bool) {
	s.setFault(func(storeCall) storeFault {
		if !time.Now().Before(until) {
			return storeFault{}
		}
		if hang {
			return storeFault{hang: true}
		}
		return storeFault{err: errStoreDown}
	})
}

// enter counts a call and applies the fault, if any: it returns whether a claim is refused, or
// the call's error.
func (s *memStore) enter(ctx context.Context, c storeCall) (refused bool, err error) {
	op := c.op
	s.mu.Lock()
	s.calls[op]++
	if c.node != "" {
		s.calls[op+":"+c.node]++
	}
	if c.dest != "" {
		s.calls[op+"@"+c.dest]++
	}
	f := s.fault
	s.mu.Unlock()
	if f == nil {
		return false, nil
	}
	sf := f(c)
	if sf.hang {
		s.mu.Lock()
		s.hanging++
		s.mu.Unlock()
		<-ctx.Done()
		s.mu.Lock()
		s.hanging--
		s.mu.Unlock()
		return false, fmt.Errorf("%s: %w", op, ctx.Err())
	}
	return sf.refuse, sf.err
}

func (s *memStore) callsOf(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func (s *memStore) hangingCalls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hanging
}

// holder returns the node holding a destination's claim now ("" when none or expired).
func (s *memStore) holder(destID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.claims[destID]
	if !ok || !time.Now().Before(c.until) {
		return ""
	}
	return c.node
}

func (s *memStore) Write(ctx context.Context, b delivery.Batch) error {
	if _, err := s.enter(ctx, storeCall{op: opWrite, batch: &b}); err != nil {
		return err
	}
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

func (s *memStore) ParkedHeads(ctx context.Context, destID string, now time.Time, limit int) ([]delivery.Parked, error) {
	if _, err := s.enter(ctx, storeCall{op: opHeads, dest: destID}); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	minSeq := map[string]int64{}
	for _, p := range s.parked {
		if m, ok := minSeq[p.ProfileKey]; p.DestinationID == destID && (!ok || p.Seq < m) {
			minSeq[p.ProfileKey] = p.Seq
		}
	}
	var out []delivery.Parked
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

func (s *memStore) ParkedProfiles(ctx context.Context, destID string) (map[string]int, error) {
	if _, err := s.enter(ctx, storeCall{op: opProfiles, dest: destID}); err != nil {
		return nil, err
	}
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

func (s *memStore) CountParked(ctx context.Context, destID string) (int64, error) {
	if _, err := s.enter(ctx, storeCall{op: opCount, dest: destID}); err != nil {
		return 0, err
	}
	s.mu.Lock()
	var n int64
	for _, p := range s.parked {
		if p.DestinationID == destID {
			n++
		}
	}
	after := s.afterCountParked
	s.mu.Unlock()
	if after != nil {
		after()
	}
	return n, nil
}

func (s *memStore) ParkedDestinations(ctx context.Context) ([]string, error) {
	if _, err := s.enter(ctx, storeCall{op: opDestinations}); err != nil {
		return nil, err
	}
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

// Claim is store.DB's: node gets (or renews) the claim when it is free, expired or its own, and
// hears when another node last asked for it; a node refused that wants it records its ask.
func (s *memStore) Claim(ctx context.Context, destID, node string, now time.Time, ttl time.Duration, want bool) (bool, time.Time, error) {
	if refused, err := s.enter(ctx, storeCall{op: opClaim, dest: destID, node: node}); err != nil || refused {
		return false, time.Time{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.claims[destID]
	if ok && c.node != node && !c.until.Before(now) {
		if want {
			c.wanted = now
			s.claims[destID] = c
		}
		return false, time.Time{}, nil
	}
	if !ok || c.node != node {
		c = claimRow{node: node}
	}
	c.until = now.Add(ttl)
	s.claims[destID] = c
	return true, c.wanted, nil
}

func (s *memStore) Release(ctx context.Context, destID, node string) error {
	if _, err := s.enter(ctx, storeCall{op: opRelease, dest: destID, node: node}); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.claims[destID]; ok && c.node == node {
		delete(s.claims, destID)
	}
	return nil
}

func (s *memStore) DeliveryStatus(ctx context.Context, id string) (delivery.Status, error) {
	if _, err := s.enter(ctx, storeCall{op: opStatus}); err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.status[id], nil
}

func (s *memStore) Finished(ctx context.Context, ids []string) (map[string]bool, error) {
	if _, err := s.enter(ctx, storeCall{op: opFinished}); err != nil {
		return nil, err
	}
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

func (s *memStore) parkedRow(id string) (delivery.Parked, bool) {
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
	// onCommit, if set, is told of every commit (under the source's lock).
	onCommit func(off int64)
}

func (s *memSource) Records() <-chan queue.Record { return s.recs }

func (s *memSource) Commit(_ context.Context, recs ...queue.Record) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range recs {
		s.committed = max(s.committed, r.Offset)
	}
	if s.onCommit != nil {
		s.onCommit(s.committed)
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

func (r *memRegistry) setPaused(id string, paused bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d := r.dests[id]
	d.Paused = paused
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

const (
	rigDest   = "dst_timing"
	otherDest = "dst_other" // a second destination, for isolation tests
)

// rig runs a real Dispatcher, with the doubles above, inside the current synctest bubble. It
// keeps a ledger: every commit is checked against the store — an offset may be committed only
// when the delivery it carries (and every one before it) has ended or is parked.
type rig struct {
	t      *testing.T
	d      *Dispatcher
	src    *memSource
	reg    *memRegistry
	st     *memStore
	snd    *fakeSender
	stop   context.CancelFunc
	done   chan struct{}
	prefix string // of the delivery IDs this rig makes up
	// partition is the one offerTo publishes to (0 unless a test sets it; offsets count on
	// across partitions, so that the ledger's offsets stay unique).
	partition int

	mu      sync.Mutex
	seq     int64
	ids     map[int64]string // offset → delivery ID
	checked int64            // offsets up to this one were checked at a commit
	wrong   []string         // ledger violations
	closed  bool
}

// startRig must be called inside a synctest bubble; the caller defers r.close().
func startRig(t *testing.T, opts Options, perMin int, script func(id string, n, all int) reply) *rig {
	t.Helper()
	return startNode(t, newMemStore(), "node-timing", opts, perMin, script)
}

// startNode starts a dispatcher named node on st, which other nodes may share.
func startNode(t *testing.T, st *memStore, node string, opts Options, perMin int, script func(id string, n, all int) reply) *rig {
	t.Helper()
	r := &rig{t: t,
		src: &memSource{recs: make(chan queue.Record, 1024)},
		reg: &memRegistry{changed: make(chan struct{}), dests: map[string]destination.Destination{
			rigDest:   {ID: rigDest, Name: "timing", URL: "https://example.invalid/events", Username: "u", Token: "t", RateLimitPerMinute: perMin, Enabled: true},
			otherDest: {ID: otherDest, Name: "other", URL: "https://other.invalid/events", Username: "u", Token: "t", RateLimitPerMinute: perMin, Enabled: true},
		}},
		st:     st,
		snd:    &fakeSender{script: script, perID: map[string]int{}},
		done:   make(chan struct{}),
		prefix: "dlv_",
		ids:    map[int64]string{},
	}
	r.src.onCommit = r.checkCommit
	opts.NodeID = node
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

// checkCommit is the ledger: every newly committed offset's delivery must have ended or be
// parked in the store.
func (r *rig) checkCommit(off int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ; r.checked < off; r.checked++ {
		id, ok := r.ids[r.checked+1]
		if !ok {
			continue
		}
		_, parked := r.st.parkedRow(id)
		if st := r.st.statusOf(id); !st.Terminal() && !parked {
			r.wrong = append(r.wrong, fmt.Sprintf("offset %d (%s) committed while its delivery is %q and not parked", r.checked+1, id, st))
		}
	}
}

// offer publishes one delivery job for profile and returns its delivery ID.
func (r *rig) offer(profile string) string {
	r.t.Helper()
	return r.offerSized(profile, 0)
}

// offerSized is offer with a payload of at least size bytes.
func (r *rig) offerSized(profile string, size int) string {
	r.t.Helper()
	return r.offerTo(rigDest, profile, size)
}

// offerTo publishes a job for destination dest (rigDest or otherDest).
func (r *rig) offerTo(dest, profile string, size int) string {
	r.t.Helper()
	r.mu.Lock()
	r.seq++
	seq := r.seq
	id := fmt.Sprintf("%s%04d", r.prefix, seq)
	r.ids[seq] = id
	r.mu.Unlock()
	payload := fmt.Sprintf(`{"profile":%q}`, profile)
	if size > len(payload) {
		payload = fmt.Sprintf(`{"profile":%q,"pad":%q}`, profile, strings.Repeat("x", size))
	}
	b, err := delivery.EncodeJob(delivery.Job{DeliveryID: id, UpdateID: "upd_" + id, DestinationID: dest, ProfileKey: profile,
		ReceivedAt: time.Now(), Payload: json.RawMessage(payload)})
	if err != nil {
		r.t.Fatal(err)
	}
	r.src.recs <- queue.Record{Topic: "qgate.delivery-jobs", Partition: r.partition, Offset: seq, Key: []byte(dest), Value: b}
	return id
}

// close stops the dispatcher and waits for Run to return (all its goroutines end with it), then
// reports what the ledger found and any store call still in progress.
func (r *rig) close() {
	r.t.Helper()
	r.stop()
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	for _, w := range r.wrong {
		r.t.Error("ledger: " + w)
	}
	r.wrong = nil
	if n := r.st.hangingCalls(); n > 0 {
		r.t.Errorf("%d store calls still in progress after Run returned", n)
	}
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
