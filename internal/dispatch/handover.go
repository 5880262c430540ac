package dispatch

import "time"

// askEvery is how often a lane that consumes a destination's jobs without holding its claim tries
// to take it: once the holder hands the claim over, nobody sends until the asker's next try.
const askEvery = time.Second

// A destination's jobs are keyed by destination, so one consumer-group member reads them all;
// the claim decides which node sends. The first node to serve a destination keeps its claim
// while it is busy, and draining the jobs another node parks for it keeps it busy: without a
// handover, a node that joined later would park every job of the partitions it was given, and
// each would wait for the holder's next park read (up to ClaimTTL/3) and cost a second write.
//
// So the node that consumes the jobs (a lane offered jobs in the last ClaimTTL; a lane started
// only for the park does not ask) asks for the claim each time it fails to take it (Claim's
// want), trying every askEvery instead of every ClaimTTL/3 while it asks. The holder hands the
// claim over at its next renewal once it has had no job of its own for ClaimTTL/3 and nothing of
// the destination is queued or in flight here, then stays away for ClaimTTL unless jobs of its
// own arrive. The asker takes the claim at its next try, drains the park and sends its jobs as
// they come. Should the asker be gone, the claim is free after ClaimTTL and this node takes it
// back for the park.

// handoverLocked reports whether the holder should give its claim to the node that asked for it:
// another node asked within the claim's lifetime, no job of this node's own arrived for a third
// of it (the asker consumes them now), and nothing is queued or in flight here, so that no send
// of this node's goes out beside the next holder's; l.mu is held.
func (l *lane) handoverLocked(now time.Time) bool {
	ttl := l.d.opts.ClaimTTL
	return !l.wantedAt.IsZero() && now.Sub(l.wantedAt) < ttl && now.Sub(l.lastLive) >= ttl/3 &&
		len(l.pending) == 0 && len(l.draining) == 0 && len(l.parking) == 0 && len(l.early) == 0
}

// claimEvery is how long the drainer waits between claim renewals or tries: ClaimTTL/3, or
// askEvery while the lane asks for a claim another node holds.
func (l *lane) claimEvery(now time.Time) time.Duration {
	every := l.d.opts.ClaimTTL / 3
	l.mu.Lock()
	asking := !l.owned && !l.lastLive.IsZero() && now.Sub(l.lastLive) < l.d.opts.ClaimTTL
	l.mu.Unlock()
	if asking {
		return min(every, askEvery)
	}
	return every
}
