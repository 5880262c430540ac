package dispatch

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/qualtrics"
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
	faults  atomic.Int32           // destination faults (401/403) being reported to the breaker: open at once
	name    atomic.Pointer[string] // the target's name as the last attempt read it (targetName)

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
	owned      bool      // this node holds the destination's claim
	claimedAt  time.Time // when the claim was last taken or renewed
	wantedAt   time.Time // when another node last asked for the claim, as its last renewal heard
	handedOver time.Time // when this node last handed the claim over (handover.go)
	lastLive   time.Time // when the consumer last offered a job (zero: never); lastActive also counts the lane's start
	lastActive time.Time
	// ready: the park state is loaded and the claim tried (the drainer does both, outside the
	// dispatcher's lock). Until then live jobs wait in early, in order, up to the lane's bounds.
	ready bool
	// parkReadIn is the park epoch in which the park state was last read from the store; live
	// jobs of a partition that arrived in a later epoch park until it is read again (arrival.go).
	parkReadIn int64
	early      []item
	earlyBytes int
	queued     int  // bytes of the items in the workers' queues or in flight
	closed     bool // removed or stopped: offer refuses jobs, the caller takes a new lane
	wake       chan struct{}
	reread     atomic.Bool // Wake asked the drainer to reconcile
	reconciled sync.Mutex  // held by reconcile: one at a time
	workers    sync.WaitGroup
}

type item struct {
	rec    *recordRef       // the Kafka record to finish, for live jobs
	job    delivery.Job     //
	parked *delivery.Parked // set when the item comes from the park
	size   int              // bytes it pins while queued (counted in lane.queued)
	// arrival is the park epoch in which a live job's partition last arrived (arrival.go).
	arrival int64
}

// newLane starts a lane; it does no store I/O (it runs under the dispatcher's lock): the
// drainer loads the park state and takes the claim.
func newLane(ctx context.Context, d *Dispatcher, destID string) *lane {
	l := &lane{d: d, destID: destID, ctx: ctx,
		limiter:    newLimiter(destination.DefaultRateLimitPerMinute),
		pending:    map[string]int{},
		parked:     map[string]int{},
		draining:   map[string]bool{},
		released:   map[string]time.Time{},
		parking:    map[string]int{},
		recent:     map[string]struct{}{},
		wake:       make(chan struct{}, 1),
		lastActive: d.opts.Now(),
	}
	l.breaker = newBreaker(l)
	for range d.opts.Workers {
		q := make(chan item, d.opts.QueueSize)
		l.queues = append(l.queues, q)
		d.wg.Add(1)
		l.workers.Add(1)
		go l.work(q)
	}
	d.wg.Add(1)
	go l.drain()
	return l
}

// offer takes a live job from the consumer without blocking on the destination: it is queued
// for its profile's worker, or parked when it cannot go out now (lane full in jobs or bytes, the
// profile already has parked deliveries, or another node holds the destination). Before the lane
// is ready the job waits in memory, in order, as long as the lane's bounds allow. It returns
// false when the lane is closed (removed): the caller offers the job to a new lane.
func (l *lane) offer(ctx context.Context, it item) bool {
	it.size = len(it.job.Payload)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return false
	}
	l.lastActive = l.d.opts.Now()
	l.lastLive = l.lastActive
	if !l.ready {
		if len(l.early) < len(l.queues)*l.d.opts.QueueSize && l.fits(l.earlyBytes, it.size) {
			l.early = append(l.early, it)
			l.earlyBytes += it.size
			l.mu.Unlock()
			return true
		}
	} else if l.queueLocked(it) {
		l.mu.Unlock()
		return true
	}
	l.parkingLocked(it.job.ProfileKey)
	l.mu.Unlock()
	l.d.parkAsync(ctx, l, it)
	return true
}

// fits reports whether an item of size bytes may join queued bytes in memory: within
// MaxQueuedBytes, and always when nothing is queued (a single large job is not parked for its
// size alone).
func (l *lane) fits(queued, size int) bool {
	return queued == 0 || queued+size <= l.d.opts.MaxQueuedBytes
}

// queueLocked hands a live job to its profile's worker if it may go out now and there is room;
// l.mu is held.
func (l *lane) queueLocked(it item) bool {
	p := it.job.ProfileKey
	if l.behindLocked(p) || !l.owned || l.parkStaleLocked(it) || !l.fits(l.queued, it.size) {
		return false
	}
	select {
	case l.queues[workerOf(p, len(l.queues))] <- it:
		l.pending[p]++
		l.queued += it.size
		return true
	default:
		return false
	}
}

// parkingLocked counts a live job the consumer parks (parkAsync writes it); l.mu is held.
func (l *lane) parkingLocked(profile string) {
	l.addParkedLocked(profile)
	l.parking[profile]++
	l.d.metrics.parked.Inc()
}

// start loads the lane's park state and tries the claim, then lets the jobs that arrived
// meanwhile through, in order. It returns false when the dispatcher stops first.
func (l *lane) start() bool {
	// What is parked for this destination decides which profiles must wait behind the park.
	for i := 0; ; i++ {
		err := l.loadParked()
		if err == nil {
			break
		}
		l.d.log.Warn("loading parked deliveries failed; retrying", zap.Error(err), zap.String("destinationId", l.destID))
		if !retryPause(l.ctx, i) {
			return false
		}
	}
	l.claim()
	l.mu.Lock()
	l.ready = true
	early := l.early
	l.early, l.earlyBytes = nil, 0
	var parks []item
	for _, it := range early {
		if !l.queueLocked(it) {
			l.parkingLocked(it.job.ProfileKey)
			parks = append(parks, it)
		}
	}
	l.mu.Unlock()
	for _, it := range parks {
		l.d.parkAsync(l.ctx, l, it)
	}
	return true
}

// shut ends the lane once its drainer stops: offers are refused from now on, the workers end
// when their queues are empty (the drainer was the other sender to them), and then — nothing of
// the lane's in flight any more — the claim is released.
func (l *lane) shut() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	for _, q := range l.queues {
		close(q)
	}
	l.workers.Wait()
	if l.isOwned() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = l.d.store.Release(ctx, l.destID, l.d.opts.NodeID)
		cancel()
	}
}

// idleLocked reports whether the lane has nothing to do and has had nothing for IdleRelease:
// nothing queued, in flight, parked or being parked; l.mu is held.
func (l *lane) idleLocked(now time.Time) bool {
	return l.ready && len(l.pending) == 0 && l.parkedTotal == 0 && len(l.parking) == 0 && len(l.draining) == 0 &&
		len(l.early) == 0 && now.Sub(l.lastActive) > l.d.opts.IdleRelease
}

func (l *lane) work(q chan item) {
	defer l.d.wg.Done()
	defer l.workers.Done()
	for it := range q {
		if l.ctx.Err() == nil && l.deliver(it) {
			l.release(it, true)
			continue
		}
		l.stop(it)
	}
}

// stop handles an item the dispatcher is stopping under: a live job is parked so that its
// offset can be committed (it resumes from the park after the restart, in order, instead of
// being read and possibly sent again); a parked one simply stays parked. When the park is not
// confirmed within the stop grace, the job's record stays uncommitted and is read again.
func (l *lane) stop(it item) {
	if it.rec == nil {
		l.release(it, false)
		return
	}
	p := l.parkedOf(it, l.d.opts.Now(), 0, time.Time{})
	l.release(it, l.persist(delivery.Batch{Park: []delivery.Parked{p}}))
}

// release ends a worker's hold on an item: the profile's pending count drops, and a live job's
// record is finished once its outcome (or its parking) is durable.
func (l *lane) release(it item, durable bool) {
	l.mu.Lock()
	p := it.job.ProfileKey
	if l.pending[p]--; l.pending[p] <= 0 {
		delete(l.pending, p)
	}
	l.queued -= it.size
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
