// Package router owns fan-out: it consumes accepted profile updates, finds every routable
// destination whose activated audiences the update touches, shapes the payload for each,
// records the update and its deliveries, and queues one delivery job per (update, destination).
package router

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/profile"
	"github.com/qgate/qgate/internal/queue"
	"github.com/qgate/qgate/internal/update"
)

// Destinations is what the router needs to know about destinations.
type Destinations interface {
	// Sync brings the snapshot up to every destination change committed before the call and
	// returns the configuration generation it then reflects (at least).
	Sync(ctx context.Context) (int64, error)
	// Routable returns the enabled, not deleted destinations (a snapshot not to be modified).
	Routable() []destination.Destination
}

// Source yields profile-update records and takes commits once they are handled.
type Source interface {
	Records() <-chan queue.Record
	Commit(ctx context.Context, recs ...queue.Record) error
}

// Publisher queues delivery jobs with acks=all.
type Publisher interface {
	Publish(ctx context.Context, msgs []queue.Message) error
}

// StatusWriter records updates and deliveries durably.
type StatusWriter interface {
	Write(ctx context.Context, b delivery.Batch) error
}

// Router is the fan-out stage.
type Router struct {
	src     Source
	dests   Destinations
	jobs    Publisher
	status  StatusWriter
	log     *zap.Logger
	limits  profile.Limits
	metrics *Metrics
	now     func() time.Time
}

// New returns a router.
func New(src Source, dests Destinations, jobs Publisher, status StatusWriter, log *zap.Logger, m *Metrics) *Router {
	return &Router{src: src, dests: dests, jobs: jobs, status: status, log: log, limits: profile.DefaultLimits(), metrics: m, now: time.Now}
}

// maxBatch bounds how many records are handled (and committed) together.
const maxBatch = 500

// Run routes until ctx is cancelled or the source closes. Each batch is recorded durably and
// queued, and only then committed; a failing step is retried with backoff, never skipped.
//
// The two durable steps of a batch run at the same time (neither needs the other: a delivery
// event that lands before its update's "pending" one wins, see store's upsert rules), and the
// commit runs in the background while the next batch is routed: commits are cumulative per
// partition, so a commit that is still running or has failed is covered by the next one. This
// keeps the router's cycle at the slower of the two steps instead of the sum of three round
// trips — the cycle every accepted update waits for. Run returns once the commit of everything
// it handled has been attempted (bounded by 10 s when stopping).
func (r *Router) Run(ctx context.Context) error {
	c := newCommitter(r)
	defer c.close()
	recs := r.src.Records()
	for {
		var batch []queue.Record
		select {
		case <-ctx.Done():
			return nil
		case rec, ok := <-recs:
			if !ok {
				return nil
			}
			batch = append(batch, rec)
		}
	fill:
		for len(batch) < maxBatch {
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
		if !r.handle(ctx, batch) {
			return nil // stopping: the batch is read again after restart
		}
		c.add(batch)
	}
}

// handle records and queues one batch, retrying each step until it succeeds. It returns false
// when ctx ends first.
//
// First the destinations are brought up to the store's configuration generation. Every update
// of the batch was accepted, hence on Kafka, before the batch was read, so a destination
// change the API acknowledged before any of them was accepted had committed before this read
// and is routed with — whichever node made it. When the read fails the batch waits (retried
// with backoff, like the other steps) rather than being routed with a snapshot that may miss
// such a change: that would route updates without their deliveries, silently.
func (r *Router) handle(ctx context.Context, recs []queue.Record) bool {
	var gen int64
	synced := r.retry(ctx, func(ctx context.Context) error {
		var err error
		gen, err = r.dests.Sync(ctx)
		if err != nil {
			r.metrics.syncFailures.Inc()
			return fmt.Errorf("bring destinations up to date: %w", err)
		}
		return nil
	})
	if !synced {
		return false
	}
	b, msgs := r.route(recs, gen)
	var wg sync.WaitGroup
	var wrote, queued bool
	wg.Go(func() {
		start := time.Now()
		wrote = r.retry(ctx, func(ctx context.Context) error { return r.status.Write(ctx, b) })
		r.metrics.steps.WithLabelValues("status").Observe(time.Since(start).Seconds())
	})
	wg.Go(func() {
		start := time.Now()
		queued = r.retry(ctx, func(ctx context.Context) error { return r.jobs.Publish(ctx, msgs) })
		r.metrics.steps.WithLabelValues("publish").Observe(time.Since(start).Seconds())
	})
	wg.Wait()
	if !wrote || !queued {
		return false
	}
	r.metrics.updates.Add(float64(len(recs)))
	return true
}

// retry runs step until it succeeds (true) or ctx ends (false).
func (r *Router) retry(ctx context.Context, step func(context.Context) error) bool {
	for attempt := 0; ; attempt++ {
		err := step(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		r.log.Warn("router step failed; retrying", zap.Error(err), zap.Int("attempt", attempt+1))
		r.metrics.retries.Inc()
		select {
		case <-ctx.Done():
			return false
		case <-time.After(backoff(attempt)):
		}
	}
}

// committer commits handled batches in the background, in order, coalescing what piles up
// while a commit is in flight (or failing) into the next commit.
type committer struct {
	r       *Router
	ctx     context.Context // ends 10 s after close is called
	cancel  context.CancelFunc
	mu      sync.Mutex
	pending map[partition]int64 // the highest handled offset of each partition not yet committed
	wake    chan struct{}
	stop    chan struct{}
	done    chan struct{}
}

func newCommitter(r *Router) *committer {
	// Once a batch is recorded and queued its commit is owed even when stopping: otherwise the
	// batch is routed (and its deliveries sent) again after the restart. So commits have their
	// own context, which close ends 10 s after it is called.
	ctx, cancel := context.WithCancel(context.Background())
	c := &committer{r: r, ctx: ctx, cancel: cancel, pending: map[partition]int64{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

type partition struct {
	topic string
	n     int
}

// add queues a handled batch for commit. Only the highest offset per partition is kept (a
// commit covers everything below it), so what waits for a commit while the broker is away
// stays a few bytes per partition.
func (c *committer) add(batch []queue.Record) {
	c.mu.Lock()
	for _, rec := range batch {
		p := partition{rec.Topic, rec.Partition}
		if off, ok := c.pending[p]; !ok || rec.Offset > off {
			c.pending[p] = rec.Offset
		}
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// take returns what is pending as one record per partition (without key or value) and clears it.
func (c *committer) take() []queue.Record {
	c.mu.Lock()
	defer c.mu.Unlock()
	recs := make([]queue.Record, 0, len(c.pending))
	for p, off := range c.pending {
		recs = append(recs, queue.Record{Topic: p.topic, Partition: p.n, Offset: off})
	}
	clear(c.pending)
	return recs
}

func (c *committer) run() {
	defer close(c.done)
	for {
		select {
		case <-c.wake:
			c.commit()
		case <-c.stop:
			c.commit()
			return
		}
	}
}

// commit commits what is pending, retrying with backoff; batches handled meanwhile join the
// retry (commits are cumulative per partition).
func (c *committer) commit() {
	recs := c.take()
	for attempt := 0; len(recs) > 0; attempt++ {
		err := c.r.src.Commit(c.ctx, recs...)
		if err == nil {
			return
		}
		if c.ctx.Err() != nil {
			c.r.log.Warn("router commit abandoned while stopping; those updates will be routed again after restart", zap.Error(err))
			return
		}
		c.r.log.Warn("router commit failed; retrying", zap.Error(err), zap.Int("attempt", attempt+1))
		c.r.metrics.retries.Inc()
		select {
		case <-time.After(backoff(attempt)):
		case <-c.ctx.Done():
		}
		recs = append(recs, c.take()...) // later offsets of a partition win in the commit
	}
}

// close commits what is still owed (for at most 10 s) and stops.
func (c *committer) close() {
	close(c.stop)
	t := time.AfterFunc(10*time.Second, c.cancel)
	<-c.done
	t.Stop()
	c.cancel()
}

func backoff(attempt int) time.Duration {
	d := 50 * time.Millisecond << min(attempt, 7)
	return d/2 + rand.N(d/2+1)
}

// route decides every record of a batch: the updates and delivery events to record, and the
// jobs to queue, each stamped with gen, the configuration generation routed with.
func (r *Router) route(recs []queue.Record, gen int64) (delivery.Batch, []queue.Message) {
	var b delivery.Batch
	var msgs []queue.Message
	dests := r.dests.Routable()
	now := r.now().UTC()
	for _, rec := range recs {
		env, err := update.Decode(rec.Value)
		if err != nil {
			// Only qgate writes this topic; an undecodable record is a bug or a newer format.
			r.log.Error("skipping undecodable profile update", zap.Error(err), zap.Int("partition", rec.Partition), zap.Int64("offset", rec.Offset))
			r.metrics.poison.Inc()
			continue
		}
		p, ferrs := profile.Parse(env.Profile, r.limits)
		if ferrs != nil {
			r.log.Error("skipping invalid profile update", zap.String("updateId", env.UpdateID), zap.String("code", ferrs[0].Code))
			r.metrics.poison.Inc()
			continue
		}
		u := delivery.Update{UpdateID: env.UpdateID, ProfileKey: env.ProfileKey, ReceivedAt: env.ReceivedAt, RoutedAt: now}
		for _, m := range p.Memberships {
			u.Audiences = append(u.Audiences, m.AudienceID)
		}
		b.Updates = append(b.Updates, u)
		queued := &b.Updates[len(b.Updates)-1].Queued
		cons := newConsents(p)
		for i := range dests {
			d := &dests[i]
			if !Touches(d, p) {
				continue
			}
			var s Shaped
			if cons.granted(d.ConsentPolicy) {
				if s, err = Shape(d, p); err != nil {
					r.log.Error("shape failed", zap.Error(err), zap.String("updateId", env.UpdateID), zap.String("destinationId", d.ID))
					continue
				}
			} else {
				// Never shaped, never sent; the identity hashes still let support find it.
				s.identities(d, p.Identities, nil, nil)
				s.Excluded = delivery.ReasonConsentDenied
			}
			ev := delivery.Event{
				DeliveryID: delivery.ID(env.UpdateID, d.ID), UpdateID: env.UpdateID, DestinationID: d.ID,
				Status: delivery.Pending, At: now, EmailHash: s.EmailHash, ExternalIDHash: s.ExternalIDHash,
			}
			if s.Excluded != "" {
				ev.Status, ev.Reason = delivery.Excluded, s.Excluded
				b.Events = append(b.Events, ev)
				r.metrics.excluded.WithLabelValues(s.Excluded).Inc()
				continue
			}
			job, err := delivery.EncodeJob(delivery.Job{
				DeliveryID: ev.DeliveryID, UpdateID: env.UpdateID, DestinationID: d.ID,
				ProfileKey: env.ProfileKey, ReceivedAt: env.ReceivedAt, Generation: gen, Payload: s.Payload,
				EmailHash: s.EmailHash, ExternalIDHash: s.ExternalIDHash,
			})
			if err != nil {
				r.log.Error("encode job", zap.Error(err))
				continue
			}
			b.Routed = append(b.Routed, ev)
			*queued = append(*queued, d.ID)
			msgs = append(msgs, queue.Message{Key: []byte(d.ID), Value: job})
			r.metrics.jobs.Inc()
		}
	}
	return b, msgs
}

// Metrics are the router's collectors.
type Metrics struct {
	updates  prometheus.Counter
	jobs     prometheus.Counter
	excluded *prometheus.CounterVec
	poison   prometheus.Counter
	retries  prometheus.Counter

	syncFailures prometheus.Counter
	// steps times a batch's status write and its publish, each with its retries: the router
	// takes its next batch once both are done.
	steps *prometheus.HistogramVec
}

// NewMetrics registers the router's collectors.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		updates:  prometheus.NewCounter(prometheus.CounterOpts{Name: "qgate_router_updates_total", Help: "Profile updates routed."}),
		jobs:     prometheus.NewCounter(prometheus.CounterOpts{Name: "qgate_router_jobs_total", Help: "Delivery jobs queued."}),
		excluded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "qgate_router_excluded_total", Help: "Deliveries excluded at routing, by reason."}, []string{"reason"}),
		poison:   prometheus.NewCounter(prometheus.CounterOpts{Name: "qgate_router_skipped_total", Help: "Records that could not be decoded and were skipped (a bug: alert on it)."}),
		retries:  prometheus.NewCounter(prometheus.CounterOpts{Name: "qgate_router_step_retries_total", Help: "Retries of a failed store write, publish, commit or destination configuration read."}),
		syncFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "qgate_router_config_sync_failures_total",
			Help: "Failed reads of the destination configuration before a batch (the batch waits and is retried)."}),
		steps: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "qgate_router_step_seconds",
			Help:    "How long a batch's status write (step=status) and its publish of delivery jobs (step=publish) took, retries included.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"step"}),
	}
	reg.MustRegister(m.updates, m.jobs, m.excluded, m.poison, m.retries, m.syncFailures, m.steps)
	return m
}
