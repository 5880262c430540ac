// Package dispatch owns delivery: it consumes delivery jobs and serves each destination through
// its own lane — a rate limiter, a circuit breaker, retries with backoff and per-profile order —
// recording every attempt and outcome before the job's offset is committed.
package dispatch

import (
	"context"
	"hash/fnv"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/qualtrics"
	"github.com/qgate/qgate/internal/queue"
	"github.com/qgate/qgate/internal/store"
)

// Registry is what the dispatcher reads destinations from.
type Registry interface {
	// Get returns a destination, paused and deleted ones included, with its token decrypted.
	Get(id string) (destination.Destination, bool)
	// Changed is closed at the next change of any destination.
	Changed() <-chan struct{}
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

// StatusWriter records delivery events durably.
type StatusWriter interface {
	Write(ctx context.Context, b store.Batch) error
}

// Options tune the dispatcher.
type Options struct {
	Workers        int           // per destination; one profile always maps to the same worker (default 4)
	QueueSize      int           // jobs buffered per worker (default 256)
	RetryWindow    time.Duration // retry until then, then dead-letter (default 24h)
	Backoff        Backoff
	BreakerTimeout time.Duration // how long the circuit stays open before a probe (default 30s)
	BreakerTrips   uint32        // consecutive failures that open it (default 5)
	CommitInterval time.Duration // default 100ms
	Now            func() time.Time
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = 4
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
	log     *zap.Logger
	opts    Options
	metrics *Metrics
	track   *tracker

	mu    sync.Mutex
	lanes map[string]*lane
	wg    sync.WaitGroup
}

// New returns a dispatcher.
func New(src Source, reg Registry, sender Sender, status StatusWriter, log *zap.Logger, m *Metrics, opts Options) *Dispatcher {
	opts.defaults()
	return &Dispatcher{src: src, reg: reg, sender: sender, status: status, log: log, opts: opts, metrics: m, track: newTracker(), lanes: map[string]*lane{}}
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

	recs := d.src.Records()
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case rec, ok := <-recs:
			if !ok {
				break loop
			}
			job, err := delivery.DecodeJob(rec.Value)
			d.track.add(rec)
			if err != nil {
				d.log.Error("skipping undecodable delivery job", zap.Error(err), zap.Int("partition", rec.Partition), zap.Int64("offset", rec.Offset))
				d.metrics.poison.Inc()
				d.track.finish(rec)
				continue
			}
			if !d.laneFor(laneCtx, job.DestinationID).push(ctx, item{rec: rec, job: job}) {
				break loop
			}
		}
	}
	// Stop taking work; in-flight attempts finish (each bounded by the client timeout), waiting
	// workers stop at once. Unfinished records stay uncommitted and are read again later.
	stopLanes()
	d.mu.Lock()
	for _, l := range d.lanes {
		l.close()
	}
	d.mu.Unlock()
	d.wg.Wait()
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

// BreakerState reports a destination's circuit state ("closed", "open", "half-open"), or
// "closed" when no lane serves it on this node.
func (d *Dispatcher) BreakerState(destID string) string {
	d.mu.Lock()
	l, ok := d.lanes[destID]
	d.mu.Unlock()
	if !ok {
		return "closed"
	}
	return l.breaker.State().String()
}

// Outstanding reports fetched jobs not finished yet (for tests and metrics).
func (d *Dispatcher) Outstanding() int { return d.track.outstanding() }

type item struct {
	rec queue.Record
	job delivery.Job
}

func workerOf(profileKey string, n int) int {
	h := fnv.New32a()
	h.Write([]byte(profileKey))
	return int(h.Sum32() % uint32(n))
}
