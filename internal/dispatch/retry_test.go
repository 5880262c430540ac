package dispatch

import (
	"testing"
	"time"
)

func TestBackoffIsFullJitterWithinAnExponentialCeiling(t *testing.T) {
	b := Backoff{Base: 100 * time.Millisecond, Max: 2 * time.Second}
	for attempt, ceil := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: 1600 * time.Millisecond, 6: 2 * time.Second, 40: 2 * time.Second} {
		var max time.Duration
		low := false
		for range 2000 {
			d := b.Next(attempt, 0)
			if d < 0 || d > ceil {
				t.Fatalf("attempt %d: %v outside [0, %v]", attempt, d, ceil)
			}
			max = maxDur(max, d)
			low = low || d < ceil/4
		}
		if max < ceil*3/4 || !low {
			t.Fatalf("attempt %d: not spread over [0, %v] (max %v)", attempt, ceil, max)
		}
	}
}

func TestBackoffHonoursALongerRetryAfter(t *testing.T) {
	b := Backoff{Base: 10 * time.Millisecond, Max: 50 * time.Millisecond}
	if d := b.Next(1, 3*time.Second); d != 3*time.Second {
		t.Fatalf("Retry-After 3s gave %v", d)
	}
}

func maxDur(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}
