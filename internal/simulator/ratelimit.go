package simulator

import "time"

// window is a sliding-window call counter: it admits a call when fewer than
// limit calls were admitted in the last span, measured from the call's own
// arrival time.
//
// It keeps the arrival times of the last limit admitted calls in a ring, so
// the check is O(1): the call is admitted when the ring is not full, or when
// its oldest entry has left the window (oldest+span <= now). A client that
// paces itself at exactly limit calls per span (a token bucket with burst 1)
// never sees a rejection, because its (limit+1)th call arrives at least span
// after its first. Rejected calls are not counted.
//
// Arrival jitter can shrink the spacing a paced client sees on the server
// side, so the simulator runs the window slightly short: span is the
// configured window minus Config.RateGrace. See Config.
//
// window is not safe for concurrent use; its owner holds a lock.
type window struct {
	limit int
	span  time.Duration
	times []time.Time // ring of admitted arrival times, len <= limit
	next  int         // index of the oldest entry once the ring is full
}

func newWindow(limit int, span time.Duration) *window {
	if limit <= 0 {
		return nil
	}
	return &window{limit: limit, span: span, times: make([]time.Time, 0, min(limit, 1024))}
}

// check reports whether a call at now would be admitted and, if not, how long
// until it would be.
func (w *window) check(now time.Time) (ok bool, wait time.Duration) {
	if w == nil || len(w.times) < w.limit {
		return true, 0
	}
	oldest := w.times[w.next]
	free := oldest.Add(w.span)
	if !free.After(now) {
		return true, 0
	}
	return false, free.Sub(now)
}

// admit records a call at now; the caller has checked it.
func (w *window) admit(now time.Time) {
	if w == nil {
		return
	}
	if len(w.times) < w.limit {
		w.times = append(w.times, now)
		return
	}
	w.times[w.next] = now
	w.next = (w.next + 1) % w.limit
}

// retryAfterSeconds renders a wait as an integer number of seconds, at least 1.
func retryAfterSeconds(wait time.Duration) int {
	s := int((wait + time.Second - 1) / time.Second)
	return max(s, 1)
}
