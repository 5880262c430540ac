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
	reread     atomic.Bool // Wake asked the drainer to reconcile
	reconciled sync.Mutex  // held by reconcile: one at a time
	drained    chan struct{} // closed when the drainer has stopped
}

type item struct {
	rec    *recordRef    // the Kafka record to finish, for live jobs
	job    delivery.Job  //
	parked *store.Parked // set when the item comes from the park
}

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
	l.breaker = newBreaker(l)
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
func (l *lane) offer(ctx context.Context, it item) {
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
	l.d.parkAsync(ctx, l, it)
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
	l.release(it, l.persist(store.Batch{Park: []store.Parked{p}}))
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
