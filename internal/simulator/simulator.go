package simulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of Config, taken from Qualtrics' published limits.
const (
	DefaultRatePerMinute       = 3000
	DefaultMaxBodyBytes  int64 = 100 * 1024
	DefaultMaxRuns             = 100_000
)

// ErrUnknownWorkflow is returned for a workflow ID the simulator does not know.
var ErrUnknownWorkflow = errors.New("simulator: unknown workflow")

// Config tunes a Simulator. The zero value gives Qualtrics' limits.
type Config struct {
	// RatePerMinute is the default number of calls admitted per workflow in
	// any RateWindow (3000). A workflow's own RatePerMinute overrides it.
	// Negative disables the limit.
	RatePerMinute int
	// RateWindow is the sliding window length (default time.Minute); tests
	// shorten it. RatePerMinute is really "per RateWindow".
	RateWindow time.Duration
	// RateGrace shortens the window to absorb arrival jitter, so that a
	// client pacing itself at exactly the limit is never refused although
	// the network reorders its spacing by a few milliseconds. Default
	// RateWindow/100 (600ms for a minute); negative means none.
	RateGrace time.Duration
	// PerTokenRate, when positive, also limits calls per API token (across
	// workflows) to this many per RateWindow.
	PerTokenRate int
	// MaxBodyBytes is the largest accepted event body (default 102400).
	MaxBodyBytes int64
	// MaxRuns bounds the run history kept per workflow (default 100000); the
	// oldest runs are dropped first. Negative keeps everything.
	MaxRuns int
	// KeepBodies, when set to false, drops run bodies (benchmarks).
	// Default true.
	KeepBodies *bool
	// APITokens are accepted by the API v3 subset in addition to every
	// workflow's token.
	APITokens []string
	// Now is the clock (default time.Now); tests inject one.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.RatePerMinute == 0 {
		c.RatePerMinute = DefaultRatePerMinute
	}
	if c.RateWindow <= 0 {
		c.RateWindow = time.Minute
	}
	switch {
	case c.RateGrace == 0:
		c.RateGrace = c.RateWindow / 100
	case c.RateGrace < 0 || c.RateGrace >= c.RateWindow:
		c.RateGrace = 0
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if c.MaxRuns == 0 {
		c.MaxRuns = DefaultMaxRuns
	}
	if c.KeepBodies == nil {
		keep := true
		c.KeepBodies = &keep
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Workflow is a JSON-event workflow: its ID is the first path segment after
// /events/, and calls must authenticate with Username and Token.
type Workflow struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Token    string `json:"token"`
	// RatePerMinute overrides Config.RatePerMinute when non-zero; negative
	// disables the limit for this workflow.
	RatePerMinute int `json:"ratePerMinute,omitempty"`
}

// Step is one scripted answer. Status 0 means "behave normally" (after
// Delay). An empty Body gets the Qualtrics envelope for Status. Delay holds
// the answer back after the run is recorded.
type Step struct {
	Status     int
	RetryAfter string
	Body       string
	Delay      time.Duration
}

// Outcomes of a Run, as Qualtrics' run history shows them.
const (
	OutcomeSuccessful = "Successful"
	OutcomeFailed     = "Failed"
)

// Run is one call that reached a workflow (authentication passed).
type Run struct {
	Time           time.Time       `json:"time"`
	RequestID      string          `json:"requestId"`
	Auth           string          `json:"auth"` // "basic" or "token"
	IdempotencyKey string          `json:"idempotencyKey"`
	UserAgent      string          `json:"userAgent"`
	ContentType    string          `json:"contentType"`
	Method         string          `json:"method"`
	Path           string          `json:"path"`
	Query          string          `json:"query"`
	Body           json.RawMessage `json:"body"` // nil when not valid JSON or not kept
	Status         int             `json:"status"`
	Outcome        string          `json:"outcome"`
	Error          string          `json:"error,omitempty"` // why the call failed, if it did
	Scripted       bool            `json:"scripted,omitempty"`
}

// WorkflowStats counts what happened to one workflow since its last reset.
type WorkflowStats struct {
	Runs         int64 `json:"runs"`         // recorded runs, including dropped ones
	Kept         int   `json:"kept"`         // runs still in the history
	Unauthorized int64 `json:"unauthorized"` // 401s, forced ones included
	RateLimited  int64 `json:"rateLimited"`  // 429s from the limiter
	Hung         int64 `json:"hung"`         // calls held by a hang
}

// Stats is a snapshot of the simulator's counters.
type Stats struct {
	// RejectedBeforeAuth counts calls that never reached a workflow:
	// unknown workflow (404) or failed authentication (401).
	RejectedBeforeAuth int64                    `json:"rejectedBeforeAuth"`
	Workflows          map[string]WorkflowStats `json:"workflows"`
}

// Simulator is the Qualtrics stand-in; it is an http.Handler and safe for
// concurrent use.
type Simulator struct {
	cfg Config
	mux *http.ServeMux

	mu        sync.RWMutex
	workflows map[string]*workflow

	tokMu  sync.Mutex
	tokens map[string]*window

	rejected atomic.Int64

	closeMu  sync.RWMutex
	closed   bool
	done     chan struct{}
	inflight sync.WaitGroup

	surveys []survey
	brands  brandSet // survey-watch accounts by API token (brand.go)
}

// workflow is the simulator's state for one Workflow.
type workflow struct {
	mu           sync.Mutex
	cfg          Workflow
	limiter      *window
	script       []Step
	keyScripts   map[string][]Step
	latency      time.Duration
	hang         bool
	hangRelease  chan struct{} // closed when the hang is lifted
	unauthorized bool
	hostile      Hostile // Mode "" when off

	runs  []Run // ring once full
	head  int   // index of the oldest run once the ring is full
	stats WorkflowStats

	notify chan struct{} // closed on the next change to runs; nil if nobody waits
}

// New returns a Simulator with no workflows.
func New(cfg Config) *Simulator {
	s := &Simulator{
		cfg:       cfg.withDefaults(),
		workflows: make(map[string]*workflow),
		tokens:    make(map[string]*window),
		done:      make(chan struct{}),
		surveys:   seedSurveys(),
	}
	s.mux = s.routes()
	return s
}

// ServeHTTP serves every endpoint of the simulator.
func (s *Simulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		writeError(w, http.StatusServiceUnavailable, "simulator is shutting down")
		return
	}
	s.inflight.Add(1)
	s.closeMu.RUnlock()
	defer s.inflight.Done()
	s.mux.ServeHTTP(w, r)
}

// Close releases hanging and delayed calls (their connections are aborted)
// and waits for every call in progress to return. Calls after Close get 503.
// Close is idempotent.
func (s *Simulator) Close() {
	s.stop()
	s.inflight.Wait()
}

// stop marks the simulator closed and wakes every waiting handler.
func (s *Simulator) stop() {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if !s.closed {
		s.closed = true
		close(s.done)
	}
}

func (s *Simulator) windowSpan() time.Duration { return s.cfg.RateWindow - s.cfg.RateGrace }

func (s *Simulator) workflowLimit(wf Workflow) int {
	if wf.RatePerMinute != 0 {
		return wf.RatePerMinute
	}
	return s.cfg.RatePerMinute
}

// AddWorkflow creates a workflow or updates its credentials and rate. An
// update keeps the run history and faults; a rate change restarts the
// workflow's window.
func (s *Simulator) AddWorkflow(w Workflow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if wf, ok := s.workflows[w.ID]; ok {
		wf.mu.Lock()
		if s.workflowLimit(wf.cfg) != s.workflowLimit(w) {
			wf.limiter = newWindow(s.workflowLimit(w), s.windowSpan())
		}
		wf.cfg = w
		wf.mu.Unlock()
		return
	}
	s.workflows[w.ID] = &workflow{
		cfg:     w,
		limiter: newWindow(s.workflowLimit(w), s.windowSpan()),
	}
}

// RemoveWorkflow deletes a workflow and its history; it reports whether the
// workflow existed.
func (s *Simulator) RemoveWorkflow(id string) bool {
	s.mu.Lock()
	wf, ok := s.workflows[id]
	delete(s.workflows, id)
	s.mu.Unlock()
	if ok {
		wf.mu.Lock()
		wf.liftHang()
		wf.mu.Unlock()
	}
	return ok
}

// Workflows lists the configured workflows, sorted by ID.
func (s *Simulator) Workflows() []Workflow {
	s.mu.RLock()
	out := make([]Workflow, 0, len(s.workflows))
	for _, wf := range s.workflows {
		wf.mu.Lock()
		out = append(out, wf.cfg)
		wf.mu.Unlock()
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Workflow) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out
}

func (s *Simulator) lookup(id string) *workflow {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.workflows[id]
}

// with runs f on the workflow under its lock.
func (s *Simulator) with(id string, f func(wf *workflow)) error {
	wf := s.lookup(id)
	if wf == nil {
		return fmt.Errorf("%w: %q", ErrUnknownWorkflow, id)
	}
	wf.mu.Lock()
	defer wf.mu.Unlock()
	f(wf)
	return nil
}

// must panics on err: the Go control methods are called by tests, where an
// unknown workflow is a bug in the test.
func must(err error) {
	if err != nil {
		panic(err)
	}
}

// Script replaces the workflow's scripted answers: each call that passes
// the checks pops the next step; when none are left normal behaviour
// resumes. It panics on an unknown workflow.
func (s *Simulator) Script(workflowID string, steps ...Step) {
	must(s.with(workflowID, func(wf *workflow) { wf.script = slices.Clone(steps) }))
}

// SetKeyScript replaces the script for calls carrying the Idempotency-Key
// idempotencyKey; those calls pop from it before the workflow's script. It
// panics on an unknown workflow.
func (s *Simulator) SetKeyScript(workflowID, idempotencyKey string, steps ...Step) {
	must(s.with(workflowID, func(wf *workflow) {
		if wf.keyScripts == nil {
			wf.keyScripts = make(map[string][]Step)
		}
		if len(steps) == 0 {
			delete(wf.keyScripts, idempotencyKey)
			return
		}
		wf.keyScripts[idempotencyKey] = slices.Clone(steps)
	}))
}

// SetLatency delays every answer of the workflow by d, after the call is
// processed (so a client timing out may miss a recorded Successful run). It
// panics on an unknown workflow.
func (s *Simulator) SetLatency(workflowID string, d time.Duration) {
	must(s.with(workflowID, func(wf *workflow) { wf.latency = d }))
}

// SetHang makes the workflow hold calls open, unprocessed, until the client
// gives up, the hang is lifted (the held calls then proceed normally) or the
// simulator closes (their connections are aborted). It panics on an unknown
// workflow.
func (s *Simulator) SetHang(workflowID string, hang bool) {
	must(s.with(workflowID, func(wf *workflow) {
		if hang && !wf.hang {
			wf.hang = true
			wf.hangRelease = make(chan struct{})
		} else if !hang {
			wf.liftHang()
		}
	}))
}

func (wf *workflow) liftHang() {
	if wf.hang {
		wf.hang = false
		close(wf.hangRelease)
		wf.hangRelease = nil
	}
}

// ForceUnauthorized makes the workflow answer 401 whatever the credentials.
// It panics on an unknown workflow.
func (s *Simulator) ForceUnauthorized(workflowID string, on bool) {
	must(s.with(workflowID, func(wf *workflow) { wf.unauthorized = on }))
}

// Reset clears the workflow's scripts, faults, rate window, counters and run
// history; its credentials stay. It panics on an unknown workflow.
func (s *Simulator) Reset(workflowID string) {
	must(s.with(workflowID, func(wf *workflow) { s.resetLocked(wf) }))
}

// ResetAll resets every workflow, the per-token windows and the counters.
func (s *Simulator) ResetAll() {
	s.mu.RLock()
	for _, wf := range s.workflows {
		wf.mu.Lock()
		s.resetLocked(wf)
		wf.mu.Unlock()
	}
	s.mu.RUnlock()
	s.tokMu.Lock()
	clear(s.tokens)
	s.tokMu.Unlock()
	s.rejected.Store(0)
}

func (s *Simulator) resetLocked(wf *workflow) {
	wf.script = nil
	wf.keyScripts = nil
	wf.latency = 0
	wf.liftHang()
	wf.unauthorized = false
	wf.hostile = Hostile{}
	wf.limiter = newWindow(s.workflowLimit(wf.cfg), s.windowSpan())
	wf.runs = nil
	wf.head = 0
	wf.stats = WorkflowStats{}
	wf.wake()
}

// wake notifies WaitRuns callers; wf.mu is held.
func (wf *workflow) wake() {
	if wf.notify != nil {
		close(wf.notify)
		wf.notify = nil
	}
}

// record appends a run to the bounded history; wf.mu is held.
func (wf *workflow) record(run Run, maxRuns int) {
	wf.stats.Runs++
	switch {
	case maxRuns < 0 || len(wf.runs) < maxRuns:
		wf.runs = append(wf.runs, run)
	default:
		wf.runs[wf.head] = run
		wf.head = (wf.head + 1) % maxRuns
	}
	wf.wake()
}

// runsLocked returns the kept runs, oldest first; wf.mu is held.
func (wf *workflow) runsLocked() []Run {
	out := make([]Run, 0, len(wf.runs))
	out = append(out, wf.runs[wf.head:]...)
	return append(out, wf.runs[:wf.head]...)
}

// Runs returns the workflow's kept run history, oldest first (nil for an
// unknown workflow).
func (s *Simulator) Runs(workflowID string) []Run {
	var out []Run
	_ = s.with(workflowID, func(wf *workflow) { out = wf.runsLocked() })
	return out
}

// WaitRuns blocks until the workflow has recorded at least n runs since its
// last reset (dropped ones count), then returns the kept history. It fails
// when ctx ends or the workflow is unknown.
func (s *Simulator) WaitRuns(ctx context.Context, workflowID string, n int) ([]Run, error) {
	for {
		wf := s.lookup(workflowID)
		if wf == nil {
			return nil, fmt.Errorf("wait runs: %w: %q", ErrUnknownWorkflow, workflowID)
		}
		wf.mu.Lock()
		if wf.stats.Runs >= int64(n) {
			runs := wf.runsLocked()
			wf.mu.Unlock()
			return runs, nil
		}
		if wf.notify == nil {
			wf.notify = make(chan struct{})
		}
		ch := wf.notify
		got := wf.stats.Runs
		wf.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("wait runs: %d of %d: %w", got, n, context.Cause(ctx))
		}
	}
}

// Stats returns a snapshot of the counters.
func (s *Simulator) Stats() Stats {
	st := Stats{RejectedBeforeAuth: s.rejected.Load(), Workflows: make(map[string]WorkflowStats)}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for id, wf := range s.workflows {
		wf.mu.Lock()
		ws := wf.stats
		ws.Kept = len(wf.runs)
		wf.mu.Unlock()
		st.Workflows[id] = ws
	}
	return st
}

// EventURL returns the JSON-event URL of a workflow on a simulator served at
// baseURL.
func (s *Simulator) EventURL(baseURL, workflowID string) string {
	return baseURL + "/events/" + workflowID
}
