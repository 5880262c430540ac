package store

import (
	"context"
	"errors"
	"fmt"
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
type StatusWriter struct {
	db           *DB
	maxRows      int
	applyTimeout time.Duration

	mu     sync.RWMutex // Write holds it shared while handing a batch over; Close exclusively
	closed bool
	reqs   chan *writeReq
	done   chan struct{}
}

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

// NewStatusWriter starts a writer over db. Close stops it after pending writes.
func NewStatusWriter(db *DB) *StatusWriter { return newStatusWriter(db, applyTimeout) }

func newStatusWriter(db *DB, timeout time.Duration) *StatusWriter {
	w := &StatusWriter{db: db, reqs: make(chan *writeReq, 1024), done: make(chan struct{}), maxRows: 2000, applyTimeout: timeout}
	go w.loop()
	return w
}

// Write applies b durably, sharing a transaction with concurrent writes. It returns nil only
// once b is committed. A batch with an invalid identifier is refused at once (ErrInvalidText).
// When ctx ends first, the error says whether b can still be applied (ErrNotApplied,
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
	for first := range w.reqs {
		var group []*writeReq
		rows := 0
		take := func(r *writeReq) {
			if r.state.CompareAndSwap(queued, taken) { // not withdrawn by its caller
				group = append(group, r)
				rows += r.b.Size()
			}
		}
		take(first)
	collect:
		for rows < w.maxRows {
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
		if len(group) > 0 {
			w.apply(group)
		}
	}
}

// apply writes the group's batches in one transaction and answers each caller. When that fails
// and the group has more than one batch, it applies each batch on its own and answers each
// caller with its own outcome: a batch that cannot be written (a row the database refuses)
// fails only its caller. A timeout is not retried batch by batch: it says the store is not
// answering, not that a row is bad, and every caller hears it. The batches applied one by one
// share one apply timeout, so a group takes at most twice that.
func (w *StatusWriter) apply(group []*writeReq) {
	var all delivery.Batch
	for _, r := range group {
		all.Updates = append(all.Updates, r.b.Updates...)
		all.Events = append(all.Events, r.b.Events...)
		all.Park = append(all.Park, r.b.Park...)
		all.Unpark = append(all.Unpark, r.b.Unpark...)
		all.Alerts = append(all.Alerts, r.b.Alerts...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), w.applyTimeout)
	err := w.db.Apply(ctx, all)
	timedOut := err != nil && ctx.Err() != nil
	cancel()
	if err == nil || len(group) == 1 || timedOut {
		for _, r := range group {
			r.err <- err
		}
		return
	}
	ctx, cancel = context.WithTimeout(context.Background(), w.applyTimeout)
	defer cancel()
	for i, r := range group {
		err := w.db.Apply(ctx, r.b)
		r.err <- err
		if err != nil && ctx.Err() != nil {
			for _, rest := range group[i+1:] {
				rest.err <- err
			}
			return
		}
	}
}
