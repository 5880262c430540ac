package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qgate/qgate/internal/delivery"
)

// Errors of StatusWriter.Write besides the store's own. Each says whether the batch was applied.
var (
	// ErrClosed: the writer was closed before the batch was handed to it; it is not applied.
	ErrClosed = errors.New("status writer closed: batch not applied")
	// ErrNotApplied: the caller's context ended while the batch was still queued; it has been
	// withdrawn and will never be applied.
	ErrNotApplied = errors.New("status write abandoned before it was applied")
	// ErrOutcomeUnknown: the caller's context ended while the batch's transaction ran; it may
	// or may not be applied (the caller must treat it as not durable, and writing it again is
	// safe: Apply's rules make every row idempotent).
	ErrOutcomeUnknown = errors.New("status write abandoned while it was being applied: it may or may not be applied")
)

// StatusWriter batches status writes off the hot path: callers hand it a batch and wait until
// it is durable; concurrent callers' batches share one transaction. When that transaction
// fails, each batch is applied again on its own, so that a bad batch fails only its caller.
//
// It holds the router's pending rows back (Batch.Routed) for up to hold, and writes each one
// merged into its delivery's first event when that comes sooner — the common case, where a
// delivery is sent within milliseconds of being routed: the delivery is then written once, at
// its outcome, instead of once pending and once more delivered (issue #12). The rest of the
// batch is durable when Write returns, as always; a held row is written by the end of its
// hold, or at Close. A held row lost with the process costs nothing that matters: the update's
// row, written before Write returned, names the destinations it was queued for (GetUpdate
// shows them pending), its job is on Kafka and carries the identity hashes, so its first
// outcome writes the whole row. What waits meanwhile is the pending row in the store's other
// views (backlog, identity search, listings), for at most hold.
type StatusWriter struct {
	db           *DB
	maxRows      int
	applyTimeout time.Duration
	hold         time.Duration // how long a pending row (Batch.Routed) may be held back
	maxHeld      int           // beyond this many held rows, the oldest are written at once

	mu     sync.RWMutex // Write holds it shared while handing a batch over; Close exclusively
	closed bool
	reqs   chan *writeReq
	done   chan struct{}

	// The loop's own, unguarded: the held pending rows by delivery ID, and their order of
	// arrival (entries of rows written or merged since are skipped when they come up).
	held  map[string]heldRow
	order []heldID
}

type heldRow struct {
	ev  delivery.Event
	due time.Time
}

type heldID struct {
	id  string
	due time.Time
}

// Defaults of a StatusWriter's hold. 10 s covers a delivery's first attempt when it waits for
// its turn behind a few seconds of its destination's traffic (Qualtrics answers in tens of
// milliseconds); a delivery that waits longer is a backlog, and its pending row is written so
// that the backlog views show it. 32,768 rows (about 20 MB) bounds what is held, whatever the
// rate: beyond it the oldest are written at once.
const (
	defaultHold    = 10 * time.Second
	defaultMaxHeld = 1 << 15
	// heldRetry spaces the attempts to write held rows while the store refuses them.
	heldRetry = time.Second
)

// The states of a writeReq: the loop takes a queued one, or the caller withdraws it.
const (
	queued int32 = iota
	taken
	withdrawn
)

type writeReq struct {
	b     delivery.Batch
	state atomic.Int32
	err   chan error // buffered: the loop never waits for a caller that left
}

// applyTimeout bounds a transaction of the StatusWriter, and all the one-by-one applies of a
// group whose transaction failed. Callers usually give up sooner (the dispatcher after 10 s):
// they then hear ErrOutcomeUnknown.
const applyTimeout = 30 * time.Second

// NewStatusWriter starts a writer over db. Close stops it after pending writes and the rows it
// holds.
func NewStatusWriter(db *DB) *StatusWriter { return newStatusWriter(db, applyTimeout, defaultHold) }

func newStatusWriter(db *DB, timeout, hold time.Duration) *StatusWriter {
	w := &StatusWriter{db: db, reqs: make(chan *writeReq, 1024), done: make(chan struct{}), maxRows: 2000, applyTimeout: timeout,
		hold: hold, maxHeld: defaultMaxHeld, held: map[string]heldRow{}}
	go w.loop()
	return w
}

// Write applies b durably, sharing a transaction with concurrent writes. It returns nil only
// once b is committed — all of it but b.Routed, whose rows are held and written later or merged
// into their deliveries' first events (see StatusWriter). A batch with an invalid identifier is
// refused at once (ErrInvalidText). When ctx ends first, the error says whether b can still be applied (ErrNotApplied,
// ErrOutcomeUnknown); after Close it is ErrClosed.
func (w *StatusWriter) Write(ctx context.Context, b delivery.Batch) error {
	if b.Size() == 0 {
		return nil
	}
	if err := checkBatch(b); err != nil {
		return fmt.Errorf("status write: %w", err)
	}
	r := &writeReq{b: b, err: make(chan error, 1)}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return ErrClosed
	}
	select {
	case w.reqs <- r:
		w.mu.RUnlock()
	case <-ctx.Done():
		w.mu.RUnlock()
		return fmt.Errorf("%w: %w", ErrNotApplied, context.Cause(ctx))
	}
	select {
	case err := <-r.err:
		return err
	case <-ctx.Done():
	}
	if r.state.CompareAndSwap(queued, withdrawn) {
		return fmt.Errorf("%w: %w", ErrNotApplied, context.Cause(ctx))
	}
	select {
	case err := <-r.err: // the outcome came with the end of ctx
		return err
	default:
		return fmt.Errorf("%w: %w", ErrOutcomeUnknown, context.Cause(ctx))
	}
}

// Close stops the writer once the batches handed to it are applied. Writes after Close return
// ErrClosed. It is safe to call more than once and concurrently with Write.
func (w *StatusWriter) Close() {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		close(w.reqs)
	}
	w.mu.Unlock()
	<-w.done
}

func (w *StatusWriter) loop() {
	defer close(w.done)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var retryAt time.Time // while the store refuses held rows: not before then
	for {
		var first *writeReq
		if due, ok := w.nextDue(); ok {
			timer.Reset(time.Until(later(due, retryAt)))
		} else {
			timer.Stop()
		}
		select {
		case r, ok := <-w.reqs:
			if !ok {
				w.flushHeld()
				return
			}
			first = r
		case <-timer.C:
		}
		var group []*writeReq
		rows := 0
		take := func(r *writeReq) {
			if r.state.CompareAndSwap(queued, taken) { // not withdrawn by its caller
				group = append(group, r)
				rows += r.b.Size()
			}
		}
		if first != nil {
			take(first)
		}
	collect:
		for first != nil && rows < w.maxRows {
			select {
			case r, ok := <-w.reqs:
				if !ok {
					break collect
				}
				take(r)
			default:
				break collect
			}
		}
		now := time.Now()
		var due []delivery.Event
		if !now.Before(retryAt) {
			due = w.takeDue(now)
		}
		if len(group) == 0 && len(due) == 0 {
			continue
		}
		if !w.write(group, due, now) {
			retryAt = now.Add(heldRetry)
		}
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// nextDue returns when the oldest held row is due, dropping order entries of rows no longer held.
func (w *StatusWriter) nextDue() (time.Time, bool) {
	for len(w.order) > 0 {
		h := w.order[0]
		if r, ok := w.held[h.id]; ok && r.due.Equal(h.due) {
			return h.due, true
		}
		w.order = w.order[1:]
	}
	w.order = nil // let the backing array go
	return time.Time{}, false
}

// takeDue takes out the held rows due at now, and the oldest beyond maxHeld.
func (w *StatusWriter) takeDue(now time.Time) []delivery.Event {
	var out []delivery.Event
	for {
		due, ok := w.nextDue()
		if !ok || (due.After(now) && len(w.held) <= w.maxHeld) {
			return out
		}
		out = append(out, w.takeOldest())
	}
}

// takeOldest takes out the oldest held row; nextDue must have found one.
func (w *StatusWriter) takeOldest() delivery.Event {
	id := w.order[0].id
	w.order = w.order[1:]
	ev := w.held[id].ev
	delete(w.held, id)
	return ev
}

// holdRows holds evs back until due, keeping the earlier entry of a row held already.
func (w *StatusWriter) holdRows(evs []delivery.Event, due time.Time) {
	for _, e := range evs {
		if _, ok := w.held[e.DeliveryID]; ok {
			continue
		}
		w.held[e.DeliveryID] = heldRow{ev: e, due: due}
		w.order = append(w.order, heldID{id: e.DeliveryID, due: due})
	}
}

// flushHeld writes every held row (at Close). A row the store refuses then is not written: its
// delivery's first outcome writes it (see StatusWriter).
func (w *StatusWriter) flushHeld() {
	var evs []delivery.Event
	for _, ok := w.nextDue(); ok; _, ok = w.nextDue() {
		evs = append(evs, w.takeOldest())
	}
	if len(evs) > 0 {
		w.write(nil, evs, time.Now())
	}
}

// write applies the group's batches and the due held rows (as one more batch, first) and
// answers each caller. An event of the group whose pending row is held — since earlier, due
// now, or in the group itself — is written in its place, merged with it (withPending); the
// group's other pending rows are held once their batch is applied. It reports whether the due
// held rows were written (true when there were none); when they were not, they are held again,
// as are the pending rows merged into a batch that failed.
func (w *StatusWriter) write(group []*writeReq, due []delivery.Event, now time.Time) bool {
	pending := map[string]delivery.Event{} // due rows and the group's own, by delivery ID
	for _, e := range due {
		pending[e.DeliveryID] = e
	}
	for _, r := range group {
		for _, e := range r.b.Routed {
			if _, ok := pending[e.DeliveryID]; !ok {
				pending[e.DeliveryID] = e
			}
		}
	}
	merged := map[string]bool{}
	taken := make([][]delivery.Event, len(group)) // the pending rows merged into each caller's batch
	batches := make([]delivery.Batch, 1, len(group)+1)
	for i, r := range group {
		b := r.b
		b.Routed = nil // held (below), or merged into an event
		cloned := false
		for j, e := range b.Events {
			p, ok := w.held[e.DeliveryID]
			if ok {
				delete(w.held, e.DeliveryID)
				taken[i] = append(taken[i], p.ev)
			} else if p.ev, ok = pending[e.DeliveryID]; ok && !merged[e.DeliveryID] {
				merged[e.DeliveryID] = true
				taken[i] = append(taken[i], p.ev)
			} else {
				continue
			}
			if !cloned {
				b.Events, cloned = slices.Clone(b.Events), true // the caller's slice stays as it was
			}
			b.Events[j] = withPending(e, p.ev)
		}
		batches = append(batches, b)
	}
	for _, e := range due {
		if !merged[e.DeliveryID] {
			batches[0].Routed = append(batches[0].Routed, e)
		}
	}
	errs := w.apply(batches)
	dueOK := errs[0] == nil
	if !dueOK {
		w.holdRows(batches[0].Routed, now) // due again, once heldRetry has passed
	}
	for i, r := range group {
		err := errs[i+1]
		if err == nil {
			var keep []delivery.Event
			for _, e := range r.b.Routed {
				if !merged[e.DeliveryID] {
					keep = append(keep, e)
				}
			}
			w.holdRows(keep, now.Add(w.hold))
		} else {
			w.holdRows(taken[i], now.Add(w.hold))
		}
		r.err <- err
	}
	return dueOK
}

// withPending returns e, a delivery's event, with what its pending row p knows and e may not:
// when it was created and its identity hashes.
func withPending(e, p delivery.Event) delivery.Event {
	if e.CreatedAt.IsZero() || p.At.Before(e.CreatedAt) {
		e.CreatedAt = p.At
	}
	if e.EmailHash == "" {
		e.EmailHash = p.EmailHash
	}
	if e.ExternalIDHash == "" {
		e.ExternalIDHash = p.ExternalIDHash
	}
	return e
}

// apply writes the batches in one transaction and returns each one's outcome. When that fails
// and there is more than one batch, it applies each batch on its own, so that a batch that
// cannot be written (a row the database refuses) fails only itself. A timeout is not retried
// batch by batch: it says the store is not answering, not that a row is bad, and every batch
// hears it. The batches applied one by one share one apply timeout, so a group takes at most
// twice that.
func (w *StatusWriter) apply(batches []delivery.Batch) []error {
	errs := make([]error, len(batches))
	var all delivery.Batch
	parts := 0 // batches with rows
	for _, b := range batches {
		if b.Size() > 0 {
			parts++
		}
		all.Updates = append(all.Updates, b.Updates...)
		all.Routed = append(all.Routed, b.Routed...)
		all.Events = append(all.Events, b.Events...)
		all.Park = append(all.Park, b.Park...)
		all.Unpark = append(all.Unpark, b.Unpark...)
		all.Alerts = append(all.Alerts, b.Alerts...)
	}
	if all.Size() == 0 {
		return errs
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.applyTimeout)
	err := w.db.Apply(ctx, all)
	timedOut := err != nil && ctx.Err() != nil
	cancel()
	if err == nil || parts == 1 || timedOut {
		for i, b := range batches {
			if b.Size() > 0 {
				errs[i] = err
			}
		}
		return errs
	}
	ctx, cancel = context.WithTimeout(context.Background(), w.applyTimeout)
	defer cancel()
	for i, b := range batches {
		if b.Size() == 0 {
			continue
		}
		errs[i] = w.db.Apply(ctx, b)
		if errs[i] != nil && ctx.Err() != nil {
			for j := i + 1; j < len(errs); j++ {
				errs[j] = errs[i]
			}
			break
		}
	}
	return errs
}
