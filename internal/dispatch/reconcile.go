package dispatch

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// reconcile sets the per-profile park counts to what the store holds — rows may have been parked
// by another node (before a rebalance) or drained twice — except for profiles with work in
// flight here, whose counts only grow. The drainer runs it; it is serialised all the same, since
// two at once would lose the parks made during their reads.
func (l *lane) reconcile() {
	l.reconciled.Lock()
	defer l.reconciled.Unlock()
	if !l.isOwned() {
		return
	}
	ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
	defer cancel()
	total, err := l.d.store.CountParked(ctx, l.destID)
	if err != nil {
		return
	}
	l.mu.Lock()
	overflow := l.overflow
	inFlight := 0
	for _, n := range l.parking {
		inFlight += n
	}
	switch {
	case overflow && total > int64(l.d.opts.MaxParkedProfiles/2):
		l.parkedTotal = int(total) + inFlight
		l.mu.Unlock()
		return
	case !overflow && total > int64(l.d.opts.MaxParkedProfiles):
		l.enterOverflowLocked(int(total) + inFlight)
		l.mu.Unlock()
		return
	}
	l.late = map[string]int{}
	l.mu.Unlock()
	counts, err := l.d.store.ParkedProfiles(ctx, l.destID)
	l.mu.Lock()
	defer l.mu.Unlock()
	late := l.late
	l.late = nil
	if err != nil || (l.overflow && !overflow) { // failed, or overflow began during the read
		return
	}
	if l.overflow {
		// Leaving overflow: what the store holds, plus the park writes still in flight and
		// those made during the read (an overcount only makes a profile wait; a later
		// reconcile corrects it).
		l.d.log.Info("park shrank: tracking waiting profiles one by one again", zap.String("destinationId", l.destID), zap.Int64("parked", total))
		l.overflow, l.parked, l.parkedTotal = false, counts, 0
		for p, n := range l.parking {
			l.parked[p] += n
		}
		for p, n := range late {
			l.parked[p] += n
		}
		for _, n := range l.parked {
			l.parkedTotal += n
		}
		return
	}
	defer func() {
		// Parks made during the read may be missing from it: never count below them.
		for p, n := range late {
			if want := counts[p] + n; l.parked[p] < want {
				l.parkedTotal += want - l.parked[p]
				l.parked[p] = want
			}
		}
	}()
	for p, n := range counts {
		if n > l.parked[p] || (l.pending[p] == 0 && l.parking[p] == 0) {
			l.parked[p] = n
		}
	}
	for p := range l.parked {
		if _, ok := counts[p]; !ok && l.pending[p] == 0 && l.parking[p] == 0 {
			delete(l.parked, p)
		}
	}
	l.parkedTotal = 0
	for _, n := range l.parked {
		l.parkedTotal += n
	}
}
