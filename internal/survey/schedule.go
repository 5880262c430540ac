package survey

import (
	"context"
	"time"
)

// Due returns the sync a connection needs at now, if any: a full sync when one was requested
// (POST …/sync), when none ran yet, or fullEvery after the last; else an incremental one
// incrementalEvery after the last pass of either kind. After a failed sync the next attempt
// waits RetryFailedAfter (or incrementalEvery when shorter), so a broken token is not hammered.
//
// A requested sync runs at once, unless it was already tried and failed: then it too waits.
func Due(c Connection, now time.Time) (mode string, ok bool) {
	requested := c.SyncRequestedAt != nil
	if l := c.LastSync; l != nil && l.Outcome == OutcomeFailed && l.EndedAt != nil {
		tried := !requested || !l.StartedAt.Before(*c.SyncRequestedAt)
		if tried && now.Before(l.EndedAt.Add(min(RetryFailedAfter, c.IncrementalEvery.D()))) {
			return "", false
		}
	}
	if requested {
		return ModeFull, true
	}
	if c.LastFullAt == nil || !now.Before(c.LastFullAt.Add(c.FullEvery.D())) {
		return ModeFull, true
	}
	last := *c.LastFullAt
	if c.LastIncrementalAt != nil && c.LastIncrementalAt.After(last) {
		last = *c.LastIncrementalAt
	}
	if !now.Before(last.Add(c.IncrementalEvery.D())) {
		return ModeIncremental, true
	}
	return "", false
}

// RetryFailedAfter is the pause after a failed sync.
const RetryFailedAfter = 5 * time.Minute

// schedStore is what the scheduler needs of the store.
type schedStore interface {
	ListSurveyConnections(ctx context.Context) ([]Connection, error)
	GetSurveyConnection(ctx context.Context, id string) (Connection, error)
	ClaimSurveyConnection(ctx context.Context, id, node string, now time.Time, ttl time.Duration) (bool, error)
	ReleaseSurveyConnection(ctx context.Context, id, node string) error
}

// SyncFunc runs one sync.
type SyncFunc func(ctx context.Context, c Connection, mode string) (SyncRun, error)

// Scheduler checks every Tick which connections are due and syncs them, one at a time per
// connection across every node: a node syncs a connection only while it holds the
// connection's claim in the store.
type Scheduler struct {
	Store    schedStore
	Sync     SyncFunc
	Node     string
	Tick     time.Duration // default 30 s
	ClaimTTL time.Duration // default 15 min; a sync is cut at ClaimTTL - 1 min
	Now      func() time.Time
	// OnError sees failures of the loop itself (store unreachable); a failed sync is
	// recorded in its run instead.
	OnError func(error)

	wake chan struct{}
}

// NewScheduler returns a scheduler ready to Run.
func NewScheduler(st schedStore, sync SyncFunc, node string) *Scheduler {
	return &Scheduler{Store: st, Sync: sync, Node: node, wake: make(chan struct{}, 1)}
}

// Wake makes the loop look at the connections now (after POST …/sync on this node).
func (s *Scheduler) Wake() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Scheduler) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Run loops until ctx ends.
func (s *Scheduler) Run(ctx context.Context) {
	tick := s.Tick
	if tick <= 0 {
		tick = 30 * time.Second
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
		s.Pass(ctx)
		if !t.Stop() {
			select {
			case <-t.C:
			default:
			}
		}
		t.Reset(tick)
	}
}

// Pass syncs every due connection this node can claim, and returns how many it synced.
func (s *Scheduler) Pass(ctx context.Context) int {
	ttl := s.ClaimTTL
	if ttl <= 0 {
		ttl = 15 * time.Minute
	}
	conns, err := s.Store.ListSurveyConnections(ctx)
	if err != nil {
		s.fail(err)
		return 0
	}
	n := 0
	for _, c := range conns {
		if ctx.Err() != nil {
			return n
		}
		mode, ok := Due(c, s.now())
		if !ok {
			continue
		}
		got, err := s.Store.ClaimSurveyConnection(ctx, c.ID, s.Node, s.now(), ttl)
		if err != nil {
			s.fail(err)
			continue
		}
		if !got {
			continue
		}
		// Read again under the claim: another node may have synced it since the list.
		if c, err = s.Store.GetSurveyConnection(ctx, c.ID); err == nil {
			mode, ok = Due(c, s.now())
		}
		if err != nil || !ok {
			if err != nil {
				s.fail(err)
			}
			_ = s.Store.ReleaseSurveyConnection(context.WithoutCancel(ctx), c.ID, s.Node)
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, max(ttl-time.Minute, ttl/2))
		_, _ = s.Sync(sctx, c, mode) // the outcome is recorded in the run
		cancel()
		n++
		if err := s.Store.ReleaseSurveyConnection(context.WithoutCancel(ctx), c.ID, s.Node); err != nil {
			s.fail(err)
		}
	}
	return n
}

func (s *Scheduler) fail(err error) {
	if s.OnError != nil {
		s.OnError(err)
	}
}
