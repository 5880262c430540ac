package dispatch

import (
	"time"

	"golang.org/x/time/rate"

	"github.com/qgate/qgate/internal/destination"
)

func (l *lane) setRate(perMin int) {
	if perMin <= 0 {
		perMin = destination.DefaultRateLimitPerMinute
	}
	// Compared with the limiter itself, not with a copy of the last rate: a worker must not
	// wait under the old rate while another one is still about to apply the new one.
	if lim, burst := limiterShape(perMin); l.limiter.Limit() != lim || l.limiter.Burst() != burst {
		l.limiter.SetLimit(lim)
		l.limiter.SetBurst(burst)
	}
}

// limiterShape returns the token bucket that holds a destination to perMin calls in any
// 60-second window: a burst of perMin/150 calls (1 to 20) and a rate that leaves room for it,
// (perMin - burst + 1)/60 a second, so burst + 60 s × rate = perMin + 1 — the same bound as one
// call every 60/perMin seconds with a burst of one, which qgate has always had (the call at the
// window's very start and the one at its very end; the simulator's RateGrace allows for that
// edge, and a 429 from a destination that does not is retried after its Retry-After).
//
// Why a burst: with a burst of one, calls are spaced exactly 60/perMin seconds apart, so a
// delivery that arrives while the previous one is less than that ago waits for its slot even
// when the destination is far below its limit (at 3,000/min, 20 ms per call: at 40% of the
// limit a random arrival waits up to 20 ms, and queues behind others at peaks). A bucket of 20
// absorbs such peaks and costs 0.6% of the rate at 3,000/min.
func limiterShape(perMin int) (rate.Limit, int) {
	burst := min(max(perMin/150, 1), 20)
	return rate.Limit(float64(perMin-burst+1) / 60), burst
}

// newLimiter returns a limiter for perMin holding one token: a lane starts without the burst,
// which it earns by being idle.
func newLimiter(perMin int) *rate.Limiter {
	lim, burst := limiterShape(perMin)
	l := rate.NewLimiter(lim, burst)
	emptyBucket(l)
	return l
}

// emptyBucket leaves the limiter one token (a limiter is created full).
func emptyBucket(l *rate.Limiter) {
	now := time.Now()
	if n := int(l.TokensAt(now)) - 1; n > 0 {
		l.ReserveN(now, n)
	}
}
