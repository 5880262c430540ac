package dispatch

import "github.com/qgate/qgate/internal/queue"

// A partition arrives at this node when the consumer group hands it over: its first record here,
// or a record that does not follow the last one read here (another member read, parked and
// committed the records in between, or this node reads again from an older commit). Another
// node may have parked deliveries of the partition's profiles for a destination this node holds
// — a node without the claim parks every job — and a lane knows of another node's parks only
// from the store. A lane that sent a profile's later job before re-reading the park would put it
// ahead of the parked earlier one.
//
// So an arrival begins a new park epoch, and every lane re-reads its park at its drainer's next
// tick. Until a lane has read its park in the epoch a partition arrived in, that partition's
// live jobs park (behind whatever is parked, in order) instead of going straight to the
// workers. A destination's jobs all come from one partition (they are keyed by destination),
// so the jobs of partitions read here without a break need no re-read: every earlier job of
// theirs was read here, or before the partition's last arrival.
//
// Offsets within a partition are contiguous for qgate's own (non-transactional) producer; a gap
// of another kind costs one re-read per lane, never an order.

// readState is what the Run loop remembers of a partition.
type readState struct {
	last    int64 // offset of the last record read
	arrival int64 // park epoch in which the partition last arrived
}

// arrivals returns, for each record of batch, the park epoch in which its partition last
// arrived, beginning one new epoch for all the partitions that arrive with the batch. Only the
// Run loop calls it.
func (d *Dispatcher) arrivals(batch []queue.Record) []int64 {
	out := make([]int64, len(batch))
	var next int64 // the epoch the batch begins, once a record arrives
	for i, rec := range batch {
		k := partKey{rec.Topic, rec.Partition}
		st, ok := d.reads[k]
		if !ok || rec.Offset != st.last+1 {
			if next == 0 {
				next = d.parkEpoch.Load() + 1
			}
			st.arrival = next
		}
		st.last = rec.Offset
		d.reads[k] = st
		out[i] = st.arrival
	}
	if next != 0 {
		d.newParkEpoch(next)
	}
	return out
}

// newParkEpoch begins park epoch e: every lane re-reads its park at its drainer's next tick
// (DrainInterval). The drainers are not woken: while a group settles, partitions arrive one
// after another, and a lane re-reads once per tick however many arrived.
func (d *Dispatcher) newParkEpoch(e int64) {
	d.parkEpoch.Store(e)
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, l := range d.lanes {
		l.reread.Store(true)
	}
}

// parkReadLocked records that the lane's park state was read from the store in epoch e (taken
// before the read began); l.mu is held.
func (l *lane) parkReadLocked(e int64) { l.parkReadIn = max(l.parkReadIn, e) }

// parkStaleLocked reports whether it is a live job whose partition arrived after the lane last
// read its park; l.mu is held.
func (l *lane) parkStaleLocked(it item) bool { return l.parkReadIn < it.arrival }
