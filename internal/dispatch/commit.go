package dispatch

import (
	"sync"

	"github.com/qgate/qgate/internal/queue"
)

// tracker knows, per partition, which fetched records are finished (their outcome durable)
// and yields the highest offset below which everything is finished: the only offset that may
// be committed.
type tracker struct {
	mu    sync.Mutex
	parts map[partKey]*partition
}

type partKey struct {
	topic string
	part  int
}

type partition struct {
	pending []int64 // fetched, in offset order
	done    map[int64]bool
	commit  queue.Record
	dirty   bool
}

func newTracker() *tracker { return &tracker{parts: map[partKey]*partition{}} }

// add registers a fetched record; records of one partition arrive in offset order.
func (t *tracker) add(rec queue.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := partKey{rec.Topic, rec.Partition}
	p := t.parts[k]
	if p == nil {
		p = &partition{done: map[int64]bool{}}
		t.parts[k] = p
	}
	p.pending = append(p.pending, rec.Offset)
}

// finish marks a record's outcome durable.
func (t *tracker) finish(rec queue.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.parts[partKey{rec.Topic, rec.Partition}]
	if p == nil {
		return
	}
	p.done[rec.Offset] = true
	for len(p.pending) > 0 && p.done[p.pending[0]] {
		off := p.pending[0]
		delete(p.done, off)
		p.pending = p.pending[1:]
		p.commit = queue.Record{Topic: rec.Topic, Partition: rec.Partition, Offset: off}
		p.dirty = true
	}
}

// committable returns, per partition with progress, the record whose offset may be committed.
func (t *tracker) committable() []queue.Record {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []queue.Record
	for _, p := range t.parts {
		if p.dirty {
			out = append(out, p.commit)
			p.dirty = false
		}
	}
	return out
}

// retry marks records whose commit failed as still to be committed.
func (t *tracker) retry(recs []queue.Record) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range recs {
		if p := t.parts[partKey{r.Topic, r.Partition}]; p != nil && !p.dirty {
			p.commit, p.dirty = r, true
		}
	}
}

// outstanding reports how many fetched records are not finished.
func (t *tracker) outstanding() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, p := range t.parts {
		n += len(p.pending)
	}
	return n
}
