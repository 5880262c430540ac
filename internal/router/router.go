// Package router owns fan-out: it consumes accepted profile updates, finds every routable
// destination whose activated audiences the update touches, shapes the payload for each,
// records the update and its deliveries, and queues one delivery job per (update, destination).
package router

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/profile"
	"github.com/qgate/qgate/internal/queue"
	"github.com/qgate/qgate/internal/store"
	"github.com/qgate/qgate/internal/update"
)

// Destinations is what the router needs to know about destinations.
type Destinations interface {
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
	Write(ctx context.Context, b store.Batch) error
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

// Run routes until ctx is cancelled or the source closes. Each batch is recorded durably,
// queued, and only then committed; a failing step is retried with backoff, never skipped.
func (r *Router) Run(ctx context.Context) error {
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
		if err := r.handle(ctx, batch); err != nil {
			return err
		}
	}
}

// handle routes one batch, retrying until it succeeds or ctx ends.
func (r *Router) handle(ctx context.Context, recs []queue.Record) error {
	b, msgs := r.route(recs)
	// Once a batch is recorded and queued its commit is owed even when stopping: otherwise the
	// batch is routed (and its deliveries sent) again after the restart.
	commitCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	steps := []struct {
		ctx context.Context
		run func(context.Context) error
	}{
		{ctx, func(ctx context.Context) error { return r.status.Write(ctx, b) }},
		{ctx, func(ctx context.Context) error { return r.jobs.Publish(ctx, msgs) }},
		{commitCtx, func(ctx context.Context) error { return r.src.Commit(ctx, recs...) }},
	}
	for _, step := range steps {
		for attempt := 0; ; attempt++ {
			err := step.run(step.ctx)
			if err == nil {
				break
			}
			if step.ctx.Err() != nil {
				return nil // shutting down: the records are read again after restart
			}
			r.log.Warn("router step failed; retrying", zap.Error(err), zap.Int("attempt", attempt+1))
			r.metrics.retries.Inc()
			select {
			case <-step.ctx.Done():
				return nil
			case <-time.After(backoff(attempt)):
			}
		}
	}
	r.metrics.updates.Add(float64(len(recs)))
	return nil
}

func backoff(attempt int) time.Duration {
	d := 50 * time.Millisecond << min(attempt, 7)
	return d/2 + rand.N(d/2+1)
}

// route decides every record of a batch: the updates and delivery events to record, and the
// jobs to queue.
func (r *Router) route(recs []queue.Record) (store.Batch, []queue.Message) {
	var b store.Batch
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
		for i := range dests {
			d := &dests[i]
			if !Touches(d, p) {
				continue
			}
			s, err := Shape(d, p)
			if err != nil {
				r.log.Error("shape failed", zap.Error(err), zap.String("updateId", env.UpdateID), zap.String("destinationId", d.ID))
				continue
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
			b.Events = append(b.Events, ev)
			job, err := delivery.EncodeJob(delivery.Job{
				DeliveryID: ev.DeliveryID, UpdateID: env.UpdateID, DestinationID: d.ID,
				ProfileKey: env.ProfileKey, ReceivedAt: env.ReceivedAt, Payload: s.Payload,
			})
			if err != nil {
				r.log.Error("encode job", zap.Error(err))
				continue
			}
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
}

// NewMetrics registers the router's collectors.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		updates:  prometheus.NewCounter(prometheus.CounterOpts{Name: "qgate_router_updates_total", Help: "Profile updates routed."}),
		jobs:     prometheus.NewCounter(prometheus.CounterOpts{Name: "qgate_router_jobs_total", Help: "Delivery jobs queued."}),
		excluded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "qgate_router_excluded_total", Help: "Deliveries excluded at routing, by reason."}, []string{"reason"}),
		poison:   prometheus.NewCounter(prometheus.CounterOpts{Name: "qgate_router_skipped_total", Help: "Records that could not be decoded and were skipped (a bug: alert on it)."}),
		retries:  prometheus.NewCounter(prometheus.CounterOpts{Name: "qgate_router_step_retries_total", Help: "Retries of a failed store write, publish or commit."}),
	}
	reg.MustRegister(m.updates, m.jobs, m.excluded, m.poison, m.retries)
	return m
}
