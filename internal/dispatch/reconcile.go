package dispatch

import (
	"context"
	"maps"
	"time"

	"go.uber.org/zap"
)

// reconcile sets the per-profile park counts to what the store holds — rows may have been parked
// by another node (before a rebalance) or drained twice — except for profiles with work in
// flight here, whose counts only grow. The drainer runs it; it is serialised all the same, since
// two at once would lose the parks made during their reads.
//
// It reports whether the destination has nothing parked: the store counted no row, and no park
// write of this node's was in flight or made meanwhile. The drainer then skips the park read it
// would otherwise make after each claim renewal, and reconcile skips its per-profile count: at
// 400 destinations those were two of the four store round trips of each lane's renewal (issue
// #12). What another node parks after the count is found at the next renewal, as it was when
// it came just after the park read.
func (l *lane) reconcile() (empty bool) {
	l.reconciled.Lock()
	defer l.reconciled.Unlock()
	if !l.isOwned() {
		return false
	}
	ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
	defer cancel()
	epoch := l.d.parkEpoch.Load()
	// What is in flight is taken before the count, so that the count and these two cover every
	// park of this node's: committed before the count (counted), started before it and not yet
	// confirmed (inflight), or started since (late). A park confirmed between a count and a later
	// snapshot would be in neither.
	l.mu.Lock()
	l.late = map[string]int{}
	inflight := maps.Clone(l.parking)
	l.mu.Unlock()
	total, err := l.d.store.CountParked(ctx, l.destID)
	l.mu.Lock()
	if err != nil {
		l.late = nil
		l.mu.Unlock()
		return false
	}
	overflow := l.overflow
	inFlight := 0
	for _, n := range l.parking {
		inFlight += n
	}
	switch {
	case overflow && total > int64(l.d.opts.MaxParkedProfiles/2):
		l.late = nil
		l.parkedTotal = int(total) + inFlight
		l.parkReadLocked(epoch)
		l.mu.Unlock()
		return false
	case !overflow && total > int64(l.d.opts.MaxParkedProfiles):
		l.late = nil
		l.enterOverflowLocked(int(total) + inFlight)
		l.parkReadLocked(epoch)
		l.mu.Unlock()
		return false
	}
	l.mu.Unlock()
	counts := map[string]int{}
	if total > 0 {
		counts, err = l.d.store.ParkedProfiles(ctx, l.destID)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	late := l.late
	l.late = nil
	if err != nil || (l.overflow && !overflow) { // failed, or overflow began during the read
		return false
	}
	l.parkReadLocked(epoch)
	// The read may miss this node's park writes in flight when it began (inflight) and those
	// made during it (late), while it counts the parks of other nodes this lane did not know
	// of: a profile's count is what the store held plus those writes. That is an upper bound:
	// an overcount only sends the profile's live jobs through the park until a later reconcile
	// corrects it, while an undercount would let a later job overtake a parked one.
	bound := func(p string) int { return counts[p] + inflight[p] + late[p] }
	profiles := map[string]struct{}{}
	for _, m := range []map[string]int{counts, inflight, late} {
		for p := range m {
			profiles[p] = struct{}{}
		}
	}
	if l.overflow {
		l.d.log.Info("park shrank: tracking waiting profiles one by one again", zap.String("destinationId", l.destID), zap.Int64("parked", total))
		l.overflow, l.parked = false, map[string]int{}
		for p := range profiles {
			l.parked[p] = bound(p)
		}
	} else {
		for p := range profiles {
			if n := bound(p); n > l.parked[p] || (l.pending[p] == 0 && l.parking[p] == 0) {
				l.parked[p] = n
			}
		}
		for p := range l.parked {
			if _, ok := profiles[p]; !ok && l.pending[p] == 0 && l.parking[p] == 0 {
				delete(l.parked, p)
			}
		}
	}
	for p, n := range l.parked {
		if n <= 0 {
			delete(l.parked, p)
		}
	}
	l.parkedTotal = 0
	for _, n := range l.parked {
		l.parkedTotal += n
	}
	return total == 0 && l.parkedTotal == 0 && !l.overflow
}
