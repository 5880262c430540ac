package dispatch

import (
	"math/rand/v2"
	"time"
)

// Backoff is the retry strategy: exponential with full jitter, capped.
type Backoff struct {
	Base time.Duration // first retry's ceiling (default 1s)
	Max  time.Duration // ceiling of any retry (default 5m)
}

// Next returns the wait before retry number attempt (1 = first retry): a uniformly random
// duration in [0, min(Max, Base·2^(attempt-1))]. A positive retryAfter from the destination
// wins when it is longer.
func (b Backoff) Next(attempt int, retryAfter time.Duration) time.Duration {
	base, max := b.Base, b.Max
	if base <= 0 {
		base = time.Second
	}
	if max <= 0 {
		max = 5 * time.Minute
	}
	ceil := max
	if attempt < 1 {
		attempt = 1
	}
	if attempt <= 30 {
		if c := base << (attempt - 1); c > 0 && c < max {
			ceil = c
		}
	}
	d := rand.N(ceil + 1)
	if retryAfter > d {
		return retryAfter
	}
	return d
}
