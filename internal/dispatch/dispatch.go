// Package dispatch owns delivery: it consumes delivery jobs and serves each destination through
// its own lane — a rate limiter, a circuit breaker, retries with backoff and per-profile order —
// recording every attempt and outcome before the job's offset is committed.
package dispatch

import (
	"context"
	"hash/fnv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/qualtrics"
	"github.com/qgate/qgate/internal/queue"
	"github.com/qgate/qgate/internal/update"
)

// Registry is what the dispatcher reads destinations from.
type Registry interface {
	// Get returns a destination, paused and deleted ones included, with its token decrypted.
	Get(id string) (destination.Destination, bool)
	// Changed is closed at the next change of any destination.
	Changed() <-chan struct{}
	// Await returns once Get reflects configuration generation gen (a job's Generation).
	Await(ctx context.Context, gen int64) error
}

// Sender delivers one request and classifies its outcome.
type Sender interface {
	Send(ctx context.Context, req qualtrics.Request) qualtrics.Result
}

// Source yields delivery-job records and takes commits once their outcomes are durable.
type Source interface {
	Records() <-chan queue.Record
	Commit(ctx context.Context, recs ...queue.Record) error
}

// StatusWriter records delivery events, parking and alerts durably.
type StatusWriter interface {
	Write(ctx context.Context, b delivery.Batch) error
}

// Store is what the dispatcher reads of parked deliveries and destination claims.
type Store interface {
	ParkedHeads(ctx context.Context, destID string, now time.Time, limit int) ([]delivery.Parked, error)
	ParkedProfiles(ctx context.Context, destID string) (map[string]int, error)
	CountParked(ctx context.Context, destID string) (int64, error)
	ParkedDestinations(ctx context.Context) ([]string, error)
	Claim(ctx context.Context, destID, node string, now time.Time, ttl time.Duration, want bool) (held bool, wantedAt time.Time, err error)
	Release(ctx context.Context, destID, node string) error
	DeliveryStatus(ctx context.Context, deliveryID string) (delivery.Status, error)
	Finished(ctx context.Context, ids []string) (map[string]bool, error)
}

// Options tune the dispatcher.
type Options struct {
	Workers        int           // per destination; one profile always maps to the same worker (default 16)
	QueueSize      int           // jobs buffered per worker (default 256)
	RetryWindow    time.Duration // retry until then, then dead-letter (default 24h)
	Backoff        Backoff
	BreakerTimeout time.Duration // how long the circuit stays open before a probe (default 30s)
	BreakerTrips   uint32        // consecutive failures that open it (default 5)
	CommitInterval time.Duration // default 100ms
	// MaxInMemoryWait is the longest retry wait spent holding a worker; longer waits park the
	// delivery in the store, freeing the worker for other profiles (default 250ms).
	MaxInMemoryWait time.Duration
	DrainInterval   time.Duration // how often due parked deliveries are looked for (default 250ms)
	ClaimTTL        time.Duration // a destination claim's lifetime, renewed at a third of it (default 15s)
	IdleRelease     time.Duration // an idle lane gives up its claim and is removed after this (default 30s)
	// MaxQueuedBytes bounds the payload bytes a lane holds in memory (queued, in flight, or
	// waiting for the lane to start); past it, live jobs park (default 8 MiB).
	MaxQueuedBytes int
	// MaxParkedProfiles bounds the profiles a lane tracks as having parked deliveries (default
	// 50,000). Past it the lane stops tracking them one by one and parks every new job of the
	// destination until its park is down to half of it, so memory stays bounded however many
	// profiles wait for a destination that is down.
	MaxParkedProfiles int
	NodeID            string // this node's name in destination claims
	// Channels serves the lanes of notification channels (IDs with ChannelPrefix); nil: a
	// channel's deliveries are read from the registry like any destination's.
	Channels Channels
	Now      func() time.Time
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = 16
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if o.RetryWindow <= 0 {
		o.RetryWindow = 24 * time.Hour
	}
	if o.BreakerTimeout <= 0 {
		o.BreakerTimeout = 30 * time.Second
	}
	if o.BreakerTrips == 0 {
		o.BreakerTrips = 5
	}
	if o.CommitInterval <= 0 {
		o.CommitInterval = 100 * time.Millisecond
	}
	if o.MaxInMemoryWait <= 0 {
		o.MaxInMemoryWait = 250 * time.Millisecond
	}
	if o.DrainInterval <= 0 {
		o.DrainInterval = 250 * time.Millisecond
	}
	if o.ClaimTTL <= 0 {
		o.ClaimTTL = 15 * time.Second
	}
	if o.MaxParkedProfiles <= 0 {
		o.MaxParkedProfiles = 50000
	}
	if o.MaxQueuedBytes <= 0 {
		o.MaxQueuedBytes = 8 << 20
	}
	if o.IdleRelease <= 0 {
		o.IdleRelease = 30 * time.Second
	}
	if o.NodeID == "" {
		o.NodeID = "node-" + update.NewID()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Dispatcher is the delivery stage.
type Dispatcher struct {
	src     Source
	reg     Registry
	sender  Sender
	status  StatusWriter
	store   Store
	log     *zap.Logger
	opts    Options
	metrics *Metrics
	track   *tracker

	// stopping holds the end of the stop grace once Run began to stop; gaveUp is set when a
	// durable write failed past it (see persist).
	stopping atomic.Pointer[time.Time]
	gaveUp   atomic.Bool

	// reads is the Run loop's memory of each partition; parkEpoch counts the batches in which
	// partitions arrived (arrival.go).
	reads     map[partKey]readState
	parkEpoch atomic.Int64

	mu    sync.Mutex
	lanes map[string]*lane
	wg    sync.WaitGroup // lanes' workers and drainers, reviveParked
	aux   sync.WaitGroup // alert writes
	parks chan struct{}  // bounds concurrent park writes from the consumer
}

// New returns a dispatcher.
func New(src Source, reg Registry, sender Sender, status StatusWriter, st Store, log *zap.Logger, m *Metrics, opts Options) *Dispatcher {
	opts.defaults()
	return &Dispatcher{src: src, reg: reg, sender: sender, status: status, store: st, log: log, opts: opts, metrics: m,
		track: newTracker(), reads: map[partKey]readState{}, lanes: map[string]*lane{}, parks: make(chan struct{}, 64)}
}

// Run dispatches until ctx is cancelled or the source closes; then it lets the lanes finish the
// attempts in flight, commits what is finished and returns.
func (d *Dispatcher) Run(ctx context.Context) error {
	laneCtx, stopLanes := context.WithCancel(context.WithoutCancel(ctx))
	commitDone := make(chan struct{})
	stopCommit := make(chan struct{})
	go func() {
		defer close(commitDone)
		t := time.NewTicker(d.opts.CommitInterval)
		defer t.Stop()
		for {
			select {
			case <-stopCommit:
				d.commit(context.Background())
				return
			case <-t.C:
				d.commit(ctx)
			}
		}
	}()

	// Lanes for destinations with parked work, after a restart or a rebalance.
	d.wg.Add(1)
	go d.reviveParked(laneCtx)

	recs := d.src.Records()
loop:
	for {
		var batch []queue.Record
		select {
		case <-ctx.Done():
			break loop
		case rec, ok := <-recs:
			if !ok {
				break loop
			}
			batch = append(batch, rec)
		}
	fill:
		for len(batch) < 500 {
			select {
			case rec, ok := <-recs:
				if !ok {
					break fill
				}
				batch = append(batch, rec)
			default:
				break fill
			}
		}
		d.dispatch(ctx, laneCtx, batch)
	}
	// Stop taking work; in-flight attempts finish (each bounded by the client timeout), waiting
	// workers stop at once. Unfinished records stay uncommitted and are read again later.
	end := time.Now().Add(stopGrace)
	d.stopping.Store(&end)
	stopLanes()
	for range cap(d.parks) { // wait for park writes in flight
		d.parks <- struct{}{}
	}
	d.wg.Wait()  // lanes end with their drainers, which stop with laneCtx
	d.aux.Wait() // alerts of circuit changes (each bounded by the stop grace)
	close(stopCommit)
	<-commitDone
	return nil
}

func (d *Dispatcher) commit(ctx context.Context) {
	recs := d.track.committable()
	if len(recs) == 0 {
		return
	}
	if err := d.src.Commit(ctx, recs...); err != nil {
		d.track.retry(recs)
		if ctx.Err() == nil {
			d.log.Warn("commit failed; will retry", zap.Error(err))
		}
	}
}

func (d *Dispatcher) laneFor(ctx context.Context, destID string) *lane {
	d.mu.Lock()
	defer d.mu.Unlock()
	if l, ok := d.lanes[destID]; ok {
		return l
	}
	l := newLane(ctx, d, destID)
	d.lanes[destID] = l
	return l
}

// removeLane removes an idle lane that holds no claim, unless a job reached it meanwhile; the
// lane is closed under both locks, so a concurrent offer either lands before (and the lane
// stays) or is refused (and takes a new lane).
func (d *Dispatcher) removeLane(l *lane) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if d.lanes[l.destID] != l || l.owned || !l.idleLocked(d.opts.Now()) {
		return false
	}
	l.closed = true
	delete(d.lanes, l.destID)
	return true
}

// laneOf returns the destination's lane on this node, if it has one.
func (d *Dispatcher) laneOf(destID string) (*lane, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	l, ok := d.lanes[destID]
	return l, ok
}

// BreakerState reports a destination's circuit state ("closed", "open", "half-open"), or
// "closed" when no lane serves it on this node.
func (d *Dispatcher) BreakerState(destID string) string {
	state, _ := d.Circuit(destID)
	return state
}

// Circuit reports a destination's circuit state on this node and whether this node currently
// holds the destination (only then is the state authoritative: one node sends at a time).
func (d *Dispatcher) Circuit(destID string) (state string, owned bool) {
	l, ok := d.laneOf(destID)
	if !ok {
		return "closed", false
	}
	return l.breaker.State().String(), l.isOwned()
}

// Wake makes the destination's lane on this node re-read its park now (after a replay parked
// deliveries behind its back) instead of at its next claim renewal. The lane's drainer does it:
// reconcile never runs on two goroutines at once.
func (d *Dispatcher) Wake(destID string) {
	l, ok := d.laneOf(destID)
	if !ok {
		return // reviveParked starts a lane for a destination with parked deliveries
	}
	l.reread.Store(true)
	l.poke()
}

// Outstanding reports fetched jobs not finished yet (for tests and metrics).
func (d *Dispatcher) Outstanding() int { return d.track.outstanding() }

type recordRef struct{ rec queue.Record }

// dispatch hands a batch of fetched jobs to their lanes. Jobs whose delivery already ended —
// copies re-read after a crash or a rebalance, or re-routed updates — are finished without
// being sent again; one query per batch finds them.
func (d *Dispatcher) dispatch(ctx, laneCtx context.Context, batch []queue.Record) {
	jobs := make([]delivery.Job, len(batch))
	ok := make([]bool, len(batch))
	ids := make([]string, 0, len(batch))
	var gen int64 // the newest configuration generation the batch was routed with
	for i, rec := range batch {
		d.track.add(rec)
		job, err := delivery.DecodeJob(rec.Value)
		if err != nil {
			d.log.Error("skipping undecodable delivery job", zap.Error(err), zap.Int("partition", rec.Partition), zap.Int64("offset", rec.Offset))
			d.metrics.poison.Inc()
			d.track.finish(rec)
			continue
		}
		jobs[i], ok[i] = job, true
		ids = append(ids, job.DeliveryID)
		gen = max(gen, job.Generation)
	}
	arrival := d.arrivals(batch)
	// Every destination change acknowledged before these updates were accepted applies to
	// them, whether they are sent or parked here (a job parked behind a paused profile is not
	// looked at again until the destination is seen resumed): no store access unless the batch
	// was routed with a generation newer than the registry's.
	for attempt := 0; ; attempt++ {
		err := d.reg.Await(ctx, gen)
		if err == nil || ctx.Err() != nil {
			break
		}
		d.log.Warn("reading destination changes failed; retrying", zap.Error(err))
		if !retryPause(ctx, attempt) {
			break
		}
	}
	var finished map[string]bool
	for attempt := 0; ; attempt++ {
		var err error
		fctx, cancel := context.WithTimeout(ctx, readTimeout)
		finished, err = d.store.Finished(fctx, ids)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
		d.log.Warn("checking for finished deliveries failed; retrying", zap.Error(err))
		if !retryPause(ctx, attempt) {
			break
		}
	}
	for i, rec := range batch {
		if !ok[i] {
			continue
		}
		if finished[jobs[i].DeliveryID] {
			d.metrics.duplicates.Inc()
			d.track.finish(rec)
			continue
		}
		it := item{rec: &recordRef{rec: rec}, job: jobs[i], arrival: arrival[i]}
		for !d.laneFor(laneCtx, it.job.DestinationID).offer(ctx, it) {
			// The lane was removed just now (idle): the next laneFor makes a new one.
			if laneCtx.Err() != nil {
				break // stopping: the record stays unfinished and is read again
			}
		}
	}
}

// reviveParked makes sure every destination with parked deliveries has a lane on this node,
// so parked work resumes after a restart even when no new job arrives for it.
func (d *Dispatcher) reviveParked(ctx context.Context) {
	defer d.wg.Done()
	t := time.NewTicker(2 * time.Second)
	defer t.Stop()
	for {
		ids, err := d.store.ParkedDestinations(ctx)
		if err == nil {
			for _, id := range ids {
				d.laneFor(ctx, id)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func workerOf(profileKey string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(profileKey))
	return int(h.Sum32() % uint32(n))
}
