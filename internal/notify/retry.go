package notify

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Backoff is the retry strategy: exponential from Base, capped at Max, with equal jitter.
type Backoff struct {
	Base, Max time.Duration
}

// DefaultBackoff retries after about 1 s, 2 s, 4 s … up to 10 minutes.
var DefaultBackoff = Backoff{Base: time.Second, Max: 10 * time.Minute}

// NextDuration is the wait before attempt n+1 after n failed attempts (n ≥ 1).
func (b Backoff) NextDuration(n int) time.Duration {
	if b.Base <= 0 {
		b = DefaultBackoff
	}
	d := b.Base
	for i := 1; i < n && d < b.Max; i++ {
		d *= 2
	}
	d = min(d, b.Max)
	half := d / 2
	return half + time.Duration(rand.Int64N(int64(half)+1))
}

// Verdict is what an answer means for a delivery.
type Verdict int

// The verdicts.
const (
	Delivered Verdict = iota
	Retry
	Permanent
)

// Check decides for every channel kind: 2xx delivered; 408, 425, 429, 5xx and transport
// errors retried (status 0); any other answer is permanent (dead-lettered at once). wait is
// the Retry-After the receiver asked for, if any.
func Check(status int, h http.Header) (v Verdict, wait time.Duration) {
	switch {
	case status >= 200 && status < 300:
		return Delivered, 0
	case status == 0, status == 408, status == 425, status == 429, status >= 500:
		return Retry, retryAfter(h)
	}
	return Permanent, 0
}

func retryAfter(h http.Header) time.Duration {
	if h == nil {
		return 0
	}
	v := strings.TrimSpace(h.Get("Retry-After"))
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return min(time.Duration(n)*time.Second, time.Hour)
	}
	return 0
}
