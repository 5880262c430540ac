package dispatch

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/qualtrics"
	"github.com/qgate/qgate/internal/store"
)

// lane serves one destination on this node: workers that each own a set of profiles (one
// profile's jobs go out in order while others proceed), sharing the destination's rate limiter
// and circuit breaker; a drainer that feeds parked deliveries back when they are due; and the
// destination's claim, without which nothing is sent (one node sends to a destination at a time).
type lane struct {
	d       *Dispatcher
	destID  string
	ctx     context.Context
	queues  []chan item
	limiter *rate.Limiter
	breaker *gobreaker.CircuitBreaker[qualtrics.Result]
	faults  atomic.Int32 // destination faults (401/403) being reported to the breaker: open at once

	mu          sync.Mutex
	pending     map[string]int // profile → items queued or in flight on this node
	parked      map[string]int // profile → deliveries parked in the store (empty in overflow)
	parkedTotal int            // deliveries parked in the store
	// overflow: more profiles have parked deliveries than MaxParkedProfiles; they are not
	// tracked one by one, and every profile counts as having something parked.
	overflow bool
	// late counts, per profile, deliveries parked while reconcile reads the store: the read may
	// miss them, and a count must never drop below what is really parked. nil otherwise.
	late     map[string]int
	draining map[string]bool // parked delivery IDs handed to workers
	// released holds parked deliveries a worker finished with (sent, re-parked or closed) and
	// when: a head list read before that moment is stale for them and must not resend them.
	released map[string]time.Time
	parking  map[string]int // profile → park writes in flight from the consumer
	// recent remembers deliveries this lane finished lately (a bounded ring), so that a second
	// copy on this node — queued before a rebalance, or parked by another node meanwhile — is
	// closed instead of sent again. The claim makes this node the only sender.
	recent     map[string]struct{}
	recentRing []string
	recentNext int
	owned      bool // this node holds the destination's claim
	lastActive time.Time
	wake       chan struct{}
	drained    chan struct{} // closed when the drainer has stopped
}

type item struct {
	rec    *recordRef    // the Kafka record to finish, for live jobs
	job    delivery.Job  //
	parked *store.Parked // set when the item comes from the park
}

var errAttemptFailed = errors.New("attempt failed")

func newLane(ctx context.Context, d *Dispatcher, destID string) *lane {
	l := &lane{d: d, destID: destID, ctx: ctx,
		limiter:  newLimiter(destination.DefaultRateLimitPerMinute),
		pending:  map[string]int{},
		parked:   map[string]int{},
		draining: map[string]bool{},
		released: map[string]time.Time{},
		parking:  map[string]int{},
		recent:   map[string]struct{}{},
		wake:     make(chan struct{}, 1),
		drained:  make(chan struct{}),
	}
	l.breaker = gobreaker.NewCircuitBreaker[qualtrics.Result](gobreaker.Settings{
		Name:        destID,
		MaxRequests: 1,
		Timeout:     d.opts.BreakerTimeout,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			return l.faults.Load() > 0 || c.ConsecutiveFailures >= d.opts.BreakerTrips
		},
		OnStateChange: func(name string, from, to gobreaker.State) { d.breakerChanged(name, from, to) },
	})
	// What is parked for this destination decides which profiles must wait behind the park.
	for i := 0; ; i++ {
		err := l.loadParked(ctx)
		if err == nil {
			break
		}
		d.log.Warn("loading parked deliveries failed; retrying", zap.Error(err), zap.String("destinationId", destID))
		if !sleep(ctx, time.Duration(min(i+1, 10))*100*time.Millisecond) {
			break
		}
	}
	l.claim()
	for range d.opts.Workers {
		q := make(chan item, d.opts.QueueSize)
		l.queues = append(l.queues, q)
		d.wg.Add(1)
		go l.work(q)
	}
	d.wg.Add(1)
	go l.drain()
	return l
}

// offer takes a live job from the consumer without blocking on the destination: it is queued
// for its profile's worker, or parked when it cannot go out now (lane full, the profile already
// has parked deliveries, or another node holds the destination).
func (l *lane) offer(it item) {
	p := it.job.ProfileKey
	l.mu.Lock()
	l.lastActive = l.d.opts.Now()
	if !l.behindLocked(p) && l.owned {
		select {
		case l.queues[workerOf(p, len(l.queues))] <- it:
			l.pending[p]++
			l.mu.Unlock()
			return
		default:
		}
	}
	l.addParkedLocked(p)
	l.parking[p]++
	l.mu.Unlock()
	l.d.metrics.parked.Inc()
	l.d.parkAsync(l, it)
}

// close ends the workers once the drainer (the other sender to their queues) has stopped; the
// lane's context must be cancelled first.
func (l *lane) close() {
	<-l.drained
	for _, q := range l.queues {
		close(q)
	}
}

func (l *lane) work(q chan item) {
	defer l.d.wg.Done()
	for it := range q {
		if l.ctx.Err() != nil {
			l.stop(it)
			continue
		}
		if !l.deliver(it) && l.ctx.Err() != nil {
			l.stop(it)
			continue
		}
		l.release(it, true)
	}
}

// stop handles an item the dispatcher is stopping under: a live job is parked so that its
// offset can be committed (it resumes from the park after the restart, in order, instead of
// being read and possibly sent again); a parked one simply stays parked.
func (l *lane) stop(it item) {
	if it.rec == nil {
		l.release(it, false)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p := l.parkedOf(it, l.d.opts.Now(), 0, time.Time{})
	l.release(it, l.d.status.Write(ctx, store.Batch{Park: []store.Parked{p}}) == nil)
}

// release ends a worker's hold on an item: the profile's pending count drops, and a live job's
// record is finished once its outcome (or its parking) is durable.
func (l *lane) release(it item, durable bool) {
	l.mu.Lock()
	p := it.job.ProfileKey
	if l.pending[p]--; l.pending[p] <= 0 {
		delete(l.pending, p)
	}
	if it.parked != nil {
		delete(l.draining, it.parked.DeliveryID)
		l.released[it.parked.DeliveryID] = l.d.opts.Now()
	}
	l.mu.Unlock()
	if durable && it.rec != nil {
		l.d.track.finish(it.rec.rec)
	}
	if it.parked != nil {
		l.poke()
	}
}

func (l *lane) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// deliver drives one item to a durable state: a final outcome, or parked. It returns false
// when the dispatcher stops first.
func (l *lane) deliver(it item) bool {
	ctx, job, d := l.ctx, it.job, l.d
	attempt := 0
	var first time.Time
	if it.parked != nil {
		attempt = it.parked.Attempts
		if it.parked.FirstAttemptAt != nil {
			first = *it.parked.FirstAttemptAt
		}
	}
	// The ring catches second live copies; a parked item is checked against the store below
	// (a replayed dead letter is parked again under its own ID and must go out).
	l.mu.Lock()
	_, seen := l.recent[job.DeliveryID]
	l.mu.Unlock()
	if seen && it.parked == nil {
		d.metrics.duplicates.Inc()
		return true
	}
	if it.parked != nil {
		// A parked copy of a delivery that already ended (sent by the node that held the
		// destination while this copy was parked, e.g. around a rebalance) is not sent again.
		// When the store cannot say, ask again rather than risk a second send.
		st, err := d.store.DeliveryStatus(ctx, job.DeliveryID)
		for i := 0; err != nil; i++ {
			if !retryPause(ctx, i) {
				return false
			}
			st, err = d.store.DeliveryStatus(ctx, job.DeliveryID)
		}
		if st.Terminal() {
			if !l.write(ctx, store.Batch{Unpark: []string{it.parked.DeliveryID}}) {
				return false
			}
			l.unparked(job.ProfileKey)
			d.metrics.duplicates.Inc()
			return true
		}
	}
	// Every destination change acknowledged before the update was accepted applies: the
	// registry first reflects the generation the job was routed with (no store access unless
	// that generation is newer than the registry's).
	for i := 0; ; i++ {
		if err := d.reg.Await(ctx, job.Generation); err == nil {
			break
		}
		if !retryPause(ctx, i) {
			return false
		}
	}
	for {
		if it.parked == nil {
			l.mu.Lock()
			behind := l.behindLocked(job.ProfileKey)
			l.mu.Unlock()
			if behind { // an earlier delivery of this profile was parked: wait behind it
				return l.park(ctx, it, d.opts.Now(), attempt, first, nil)
			}
		}
		dest, ok := d.reg.Get(job.DestinationID)
		if !ok || dest.DeletedAt != nil {
			return l.finish(ctx, it, delivery.Excluded, delivery.ReasonDestinationDeleted, nil)
		}
		if dest.Paused {
			return l.park(ctx, it, d.opts.Now(), attempt, first, nil)
		}
		if !l.isOwned() {
			return l.park(ctx, it, d.opts.Now().Add(time.Second), attempt, first, nil)
		}
		if l.breaker.State() == gobreaker.StateOpen {
			// Refused without spending a rate-limit slot: a down destination's queued jobs
			// reach the park at once instead of at the destination's rate.
			return l.park(ctx, it, d.opts.Now().Add(d.opts.BreakerTimeout), attempt, first, nil)
		}
		l.setRate(dest.RateLimitPerMinute)
		if err := l.limiter.Wait(ctx); err != nil {
			return false
		}
		start := d.opts.Now()
		if first.IsZero() {
			first = start
		}
		fault := false // this attempt's 401/403 is counted in l.faults until the breaker saw it
		res, err := l.breaker.Execute(func() (qualtrics.Result, error) {
			// An attempt in flight finishes even when the dispatcher is stopping (bounded by the
			// client's per-attempt timeout), so its outcome is recorded rather than repeated.
			r := d.sender.Send(context.WithoutCancel(ctx), qualtrics.Request{URL: dest.URL, Username: dest.Username, Token: dest.Token, Body: job.Payload, IdempotencyKey: job.DeliveryID})
			switch r.Class {
			case qualtrics.Delivered, qualtrics.Permanent:
				return r, nil
			case qualtrics.DestinationFault:
				// Counted until the breaker has seen this failure, so a success of another
				// worker at the same moment cannot keep the circuit from opening.
				l.faults.Add(1)
				fault = true
				return r, errAttemptFailed
			default:
				return r, errAttemptFailed
			}
		})
		if fault {
			l.faults.Add(-1)
		}
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			// Nothing was sent: the circuit is open. Wait outside RAM for the next probe window.
			return l.park(ctx, it, d.opts.Now().Add(d.opts.BreakerTimeout), attempt, first, nil)
		}
		attempt++
		now := d.opts.Now()
		a := &delivery.Attempt{N: attempt, At: start, StatusCode: res.Status, LatencyMS: float64(res.Latency.Microseconds()) / 1000,
			Outcome: res.Class.String(), Reason: string(res.Reason), Error: res.Excerpt}
		if res.Class == qualtrics.Delivered {
			a.Error = ""
		}
		d.metrics.attempts.WithLabelValues(res.Class.String(), string(res.Reason)).Inc()
		d.metrics.latency.Observe(res.Latency.Seconds())
		// The outcome of a finished attempt is recorded even when stopping.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		switch {
		case res.Class == qualtrics.Delivered:
			d.metrics.endToEnd.Observe(now.Sub(job.ReceivedAt).Seconds())
			defer cancel()
			return l.finish(rctx, it, delivery.Delivered, "", a)
		case res.Class == qualtrics.Permanent:
			defer cancel()
			return l.finish(rctx, it, delivery.DeadLettered, string(res.Reason), a)
		case now.Sub(first) >= d.opts.RetryWindow:
			defer cancel()
			return l.finish(rctx, it, delivery.DeadLettered, delivery.ReasonRetryWindow, a)
		}
		wait := d.opts.Backoff.Next(attempt, res.RetryAfter)
		next := now.Add(wait)
		ev := l.event(job, delivery.Retrying, string(res.Reason), a)
		ev.NextAttemptAt = &next
		if wait > d.opts.MaxInMemoryWait {
			defer cancel()
			return l.park(rctx, it, next, attempt, first, &ev)
		}
		recorded := l.write(rctx, store.Batch{Events: []delivery.Event{ev}})
		cancel()
		if !recorded || !sleep(ctx, wait) {
			return false
		}
	}
}

func (l *lane) event(job delivery.Job, st delivery.Status, reason string, a *delivery.Attempt) delivery.Event {
	return delivery.Event{DeliveryID: job.DeliveryID, UpdateID: job.UpdateID, DestinationID: job.DestinationID,
		Status: st, Reason: reason, At: l.d.opts.Now(), Attempt: a}
}

// finish records a final outcome (and takes the delivery out of the park).
func (l *lane) finish(ctx context.Context, it item, st delivery.Status, reason string, a *delivery.Attempt) bool {
	ev := l.event(it.job, st, reason, a)
	if st == delivery.DeadLettered {
		ev.Payload = it.job.Payload
	}
	b := store.Batch{Events: []delivery.Event{ev}}
	if it.parked != nil {
		b.Unpark = []string{it.parked.DeliveryID}
	}
	if !l.write(ctx, b) {
		return false
	}
	l.d.metrics.outcomes.WithLabelValues(string(st), reason).Inc()
	l.remember(it.job.DeliveryID)
	if it.parked != nil {
		l.unparked(it.job.ProfileKey)
	}
	return true
}

// recentSize bounds the finished-delivery memory of a lane: more than its queues hold.
const recentSize = 8192

func (l *lane) remember(id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.recentRing) < recentSize {
		l.recentRing = append(l.recentRing, id)
	} else {
		delete(l.recent, l.recentRing[l.recentNext])
		l.recentRing[l.recentNext] = id
		l.recentNext = (l.recentNext + 1) % recentSize
	}
	l.recent[id] = struct{}{}
}

// park stores the item to be retried at due, with the event that explains why (if any).
func (l *lane) park(ctx context.Context, it item, due time.Time, attempts int, first time.Time, ev *delivery.Event) bool {
	p := l.parkedOf(it, due, attempts, first)
	b := store.Batch{Park: []store.Parked{p}}
	if ev != nil {
		b.Events = []delivery.Event{*ev}
	}
	if !l.write(ctx, b) {
		return false
	}
	if it.parked == nil {
		l.mu.Lock()
		l.addParkedLocked(it.job.ProfileKey)
		l.mu.Unlock()
		l.d.metrics.parked.Inc()
	}
	return true
}

func (l *lane) parkedOf(it item, due time.Time, attempts int, first time.Time) store.Parked {
	p := store.Parked{DeliveryID: it.job.DeliveryID, DestinationID: l.destID, ProfileKey: it.job.ProfileKey, DueAt: due, Attempts: attempts}
	switch {
	case it.parked != nil:
		p.Seq, p.Job = it.parked.Seq, it.parked.Job
	case it.rec != nil:
		p.Seq = it.rec.rec.Offset
	}
	if p.Job == nil {
		p.Job, _ = delivery.EncodeJob(it.job)
	}
	if !first.IsZero() {
		p.FirstAttemptAt = &first
	}
	return p
}

func (l *lane) unparked(profile string) {
	l.mu.Lock()
	if !l.overflow {
		if l.parked[profile]--; l.parked[profile] <= 0 {
			delete(l.parked, profile)
		}
	}
	l.parkedTotal = max(l.parkedTotal-1, 0)
	l.mu.Unlock()
	l.poke()
}

// behindLocked reports whether a profile has deliveries parked, so that its next one must wait
// behind them. l.mu is held.
func (l *lane) behindLocked(profile string) bool { return l.overflow || l.parked[profile] > 0 }

// addParkedLocked counts one more parked delivery of profile, and switches to overflow when
// too many profiles are tracked. l.mu is held.
func (l *lane) addParkedLocked(profile string) {
	l.parkedTotal++
	if l.late != nil {
		l.late[profile]++
	}
	if l.overflow {
		return
	}
	l.parked[profile]++
	if len(l.parked) > l.d.opts.MaxParkedProfiles {
		l.enterOverflowLocked(l.parkedTotal)
	}
}

func (l *lane) enterOverflowLocked(total int) {
	if !l.overflow {
		l.d.log.Warn("many profiles wait for this destination: parking all its new deliveries until the park shrinks",
			zap.String("destinationId", l.destID), zap.Int("parked", total), zap.Int("maxParkedProfiles", l.d.opts.MaxParkedProfiles))
	}
	l.overflow, l.parked, l.parkedTotal = true, map[string]int{}, total
}

// loadParked sets the lane's park state from the store: per profile, or — when the park holds
// more deliveries than MaxParkedProfiles — overflow with the total.
func (l *lane) loadParked(ctx context.Context) error {
	total, err := l.d.store.CountParked(ctx, l.destID)
	if err != nil {
		return err
	}
	if total > int64(l.d.opts.MaxParkedProfiles) {
		l.mu.Lock()
		l.enterOverflowLocked(int(total))
		l.mu.Unlock()
		return nil
	}
	counts, err := l.d.store.ParkedProfiles(ctx, l.destID)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.parkedTotal = 0
	for k, n := range counts {
		l.parked[k] = n
		l.parkedTotal += n
	}
	return nil
}

// write applies a batch durably; it retries until it succeeds or ctx ends.
func (l *lane) write(ctx context.Context, b store.Batch) bool {
	for i := 0; ; i++ {
		err := l.d.status.Write(ctx, b)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		l.d.log.Warn("status write failed; retrying", zap.Error(err), zap.String("destinationId", l.destID))
		if !retryPause(ctx, i) {
			return false
		}
	}
}

// drain feeds due parked deliveries to the workers — for each profile only its oldest, and
// only when nothing of that profile is in flight here — and keeps the destination's claim.
func (l *lane) drain() {
	defer l.d.wg.Done()
	defer close(l.drained)
	t := time.NewTicker(l.d.opts.DrainInterval)
	defer t.Stop()
	lastClaim := l.d.opts.Now()
	for {
		select {
		case <-l.ctx.Done():
			l.mu.Lock()
			owned := l.owned
			l.mu.Unlock()
			if owned {
				rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				_ = l.d.store.Release(rctx, l.destID, l.d.opts.NodeID)
				cancel()
			}
			return
		case <-t.C:
		case <-l.wake:
		}
		now := l.d.opts.Now()
		if now.Sub(lastClaim) >= l.d.opts.ClaimTTL/3 {
			l.claim()
			l.reconcile()
			lastClaim = now
		}
		l.mu.Lock()
		ready := l.owned && (l.parkedTotal > 0 || now.Sub(lastClaim) < l.d.opts.DrainInterval)
		l.mu.Unlock()
		if !ready {
			continue
		}
		if dest, ok := l.d.reg.Get(l.destID); ok && dest.Paused && dest.DeletedAt == nil {
			continue
		}
		// An open circuit sends nothing: leave the park alone until the probe window, then let
		// one delivery through as the probe.
		limit := 4 * l.d.opts.QueueSize
		switch l.breaker.State() {
		case gobreaker.StateOpen:
			continue
		case gobreaker.StateHalfOpen:
			l.mu.Lock()
			busy := len(l.draining) > 0
			l.mu.Unlock()
			if busy {
				continue
			}
			limit = 1
		}
		queried := l.d.opts.Now()
		heads, err := l.d.store.ParkedHeads(l.ctx, l.destID, now, limit)
		if err != nil {
			if l.ctx.Err() == nil {
				l.d.log.Warn("reading parked deliveries failed", zap.Error(err), zap.String("destinationId", l.destID))
			}
			continue
		}
		for i := range heads {
			h := &heads[i]
			l.mu.Lock()
			_, stale := l.released[h.DeliveryID]
			skip := stale || l.pending[h.ProfileKey] > 0 || l.draining[h.DeliveryID]
			if !skip {
				l.pending[h.ProfileKey]++
				l.draining[h.DeliveryID] = true
			}
			l.mu.Unlock()
			if skip {
				continue
			}
			job, err := delivery.DecodeJob(h.Job)
			if err != nil {
				l.d.log.Error("dropping undecodable parked job", zap.Error(err), zap.String("deliveryId", h.DeliveryID))
				l.write(l.ctx, store.Batch{Unpark: []string{h.DeliveryID}})
				l.release(item{job: delivery.Job{ProfileKey: h.ProfileKey}, parked: h}, false)
				l.unparked(h.ProfileKey)
				continue
			}
			select {
			case l.queues[workerOf(h.ProfileKey, len(l.queues))] <- item{job: job, parked: h}:
			case <-l.ctx.Done():
				return
			}
		}
		// Releases older than this query are reflected in it and in every later one.
		l.mu.Lock()
		for id, at := range l.released {
			if at.Before(queried) {
				delete(l.released, id)
			}
		}
		l.mu.Unlock()
	}
}

// claim takes or renews this node's claim on the destination; an idle lane gives it up so that
// another node (the new owner of the destination's partition after a rebalance) can take it.
func (l *lane) claim() {
	now := l.d.opts.Now()
	l.mu.Lock()
	idle := l.owned && len(l.pending) == 0 && l.parkedTotal == 0 && now.Sub(l.lastActive) > l.d.opts.IdleRelease
	l.mu.Unlock()
	ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
	defer cancel()
	if idle {
		if err := l.d.store.Release(ctx, l.destID, l.d.opts.NodeID); err == nil {
			l.mu.Lock()
			l.owned = false
			l.mu.Unlock()
		}
		return
	}
	ok, err := l.d.store.Claim(ctx, l.destID, l.d.opts.NodeID, now, l.d.opts.ClaimTTL)
	if err != nil {
		if l.ctx.Err() == nil {
			l.d.log.Warn("claiming destination failed", zap.Error(err), zap.String("destinationId", l.destID))
		}
		return
	}
	l.mu.Lock()
	acquired := ok && !l.owned
	l.owned = ok
	l.mu.Unlock()
	if acquired {
		// Another node may have served the destination until just now: spend the burst this
		// lane saved up while it did not own it, so the handover cannot add a burst on top of
		// the previous owner's calls.
		emptyBucket(l.limiter)
	}
}

// reconcile sets the per-profile park counts to what the store holds — rows may have been parked
// by another node (before a rebalance) or drained twice — except for profiles with work in
// flight here, whose counts only grow.
func (l *lane) reconcile() {
	if !l.isOwned() {
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
	defer cancel()
	total, err := l.d.store.CountParked(ctx, l.destID)
	if err != nil {
		return
	}
	l.mu.Lock()
	overflow := l.overflow
	inFlight := 0
	for _, n := range l.parking {
		inFlight += n
	}
	switch {
	case overflow && total > int64(l.d.opts.MaxParkedProfiles/2):
		l.parkedTotal = int(total) + inFlight
		l.mu.Unlock()
		return
	case !overflow && total > int64(l.d.opts.MaxParkedProfiles):
		l.enterOverflowLocked(int(total) + inFlight)
		l.mu.Unlock()
		return
	}
	l.late = map[string]int{}
	l.mu.Unlock()
	counts, err := l.d.store.ParkedProfiles(ctx, l.destID)
	l.mu.Lock()
	defer l.mu.Unlock()
	late := l.late
	l.late = nil
	if err != nil || (l.overflow && !overflow) { // failed, or overflow began during the read
		return
	}
	if l.overflow {
		// Leaving overflow: what the store holds, plus the park writes still in flight and
		// those made during the read (an overcount only makes a profile wait; a later
		// reconcile corrects it).
		l.d.log.Info("park shrank: tracking waiting profiles one by one again", zap.String("destinationId", l.destID), zap.Int64("parked", total))
		l.overflow, l.parked, l.parkedTotal = false, counts, 0
		for p, n := range l.parking {
			l.parked[p] += n
		}
		for p, n := range late {
			l.parked[p] += n
		}
		for _, n := range l.parked {
			l.parkedTotal += n
		}
		return
	}
	defer func() {
		// Parks made during the read may be missing from it: never count below them.
		for p, n := range late {
			if want := counts[p] + n; l.parked[p] < want {
				l.parkedTotal += want - l.parked[p]
				l.parked[p] = want
			}
		}
	}()
	for p, n := range counts {
		if n > l.parked[p] || (l.pending[p] == 0 && l.parking[p] == 0) {
			l.parked[p] = n
		}
	}
	for p := range l.parked {
		if _, ok := counts[p]; !ok && l.pending[p] == 0 && l.parking[p] == 0 {
			delete(l.parked, p)
		}
	}
	l.parkedTotal = 0
	for _, n := range l.parked {
		l.parkedTotal += n
	}
}

func (l *lane) isOwned() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.owned
}

func (l *lane) setRate(perMin int) {
	if perMin <= 0 {
		perMin = destination.DefaultRateLimitPerMinute
	}
	// Compared with the limiter itself, not with a copy of the last rate: a worker must not
	// wait under the old rate while another one is still about to apply the new one.
	if lim, burst := limiterShape(perMin); l.limiter.Limit() != lim || l.limiter.Burst() != burst {
		l.limiter.SetLimit(lim)
		l.limiter.SetBurst(burst)
	}
}

// limiterShape returns the token bucket that holds a destination to perMin calls in any
// 60-second window: a burst of perMin/150 calls (1 to 20) and a rate that leaves room for it,
// (perMin - burst + 1)/60 a second, so burst + 60 s × rate = perMin + 1 — the same bound as one
// call every 60/perMin seconds with a burst of one, which qgate has always had (the call at the
// window's very start and the one at its very end; the simulator's RateGrace allows for that
// edge, and a 429 from a destination that does not is retried after its Retry-After).
//
// Why a burst: with a burst of one, calls are spaced exactly 60/perMin seconds apart, so a
// delivery that arrives while the previous one is less than that ago waits for its slot even
// when the destination is far below its limit (at 3,000/min, 20 ms per call: at 40% of the
// limit a random arrival waits up to 20 ms, and queues behind others at peaks). A bucket of 20
// absorbs such peaks and costs 0.6% of the rate at 3,000/min.
func limiterShape(perMin int) (rate.Limit, int) {
	burst := min(max(perMin/150, 1), 20)
	return rate.Limit(float64(perMin-burst+1) / 60), burst
}

// newLimiter returns a limiter for perMin holding one token: a lane starts without the burst,
// which it earns by being idle.
func newLimiter(perMin int) *rate.Limiter {
	lim, burst := limiterShape(perMin)
	l := rate.NewLimiter(lim, burst)
	emptyBucket(l)
	return l
}

// emptyBucket leaves the limiter one token (a limiter is created full).
func emptyBucket(l *rate.Limiter) {
	now := time.Now()
	if n := int(l.TokensAt(now)) - 1; n > 0 {
		l.ReserveN(now, n)
	}
}

// retryPause waits before retry number attempt (0-based) of a store call that failed: 100 ms
// more each time, at most 2 s. It returns false when ctx ends first.
func retryPause(ctx context.Context, attempt int) bool {
	return sleep(ctx, time.Duration(min(attempt+1, 20))*100*time.Millisecond)
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
