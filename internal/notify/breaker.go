package notify

import (
	"sync"
	"time"
)

// Breaker holds a failing channel back: after Threshold retryable failures in a row, its
// deliveries are not attempted for Cooldown (they wait in the store, due at the end of it);
// then one attempt goes through (half-open), and a success closes the circuit while a failure
// opens it again for twice as long, up to MaxCooldown. The state is per node: each node learns
// a channel's health from its own attempts.
type Breaker struct {
	Threshold   int           // default 5
	Cooldown    time.Duration // default 30 s
	MaxCooldown time.Duration // default 10 min

	mu    sync.Mutex
	state map[string]*circuit
}

type circuit struct {
	fails     int
	openUntil time.Time
	cooldown  time.Duration
	probing   bool
}

func (b *Breaker) defaults() (int, time.Duration, time.Duration) {
	th, cd, mx := b.Threshold, b.Cooldown, b.MaxCooldown
	if th <= 0 {
		th = 5
	}
	if cd <= 0 {
		cd = 30 * time.Second
	}
	if mx < cd {
		mx = max(cd, 10*time.Minute)
	}
	return th, cd, mx
}

// Allow reports whether a delivery to channel may be attempted at now; when not, until says
// when the channel may be tried again.
func (b *Breaker) Allow(channel string, now time.Time) (ok bool, until time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.state[channel]
	if c == nil || c.openUntil.IsZero() {
		return true, time.Time{}
	}
	if now.Before(c.openUntil) || c.probing {
		return false, c.openUntil
	}
	c.probing = true // half-open: this one attempt decides
	return true, time.Time{}
}

// Record feeds an attempt's verdict back.
func (b *Breaker) Record(channel string, v Verdict, now time.Time) {
	th, cd, mx := b.defaults()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == nil {
		b.state = map[string]*circuit{}
	}
	c := b.state[channel]
	if c == nil {
		c = &circuit{}
		b.state[channel] = c
	}
	if v != Retry { // delivered, or a permanent answer: the channel itself answers
		*c = circuit{}
		return
	}
	c.fails++
	switch {
	case c.probing:
		c.cooldown = min(2*c.cooldown, mx)
	case c.fails >= th && c.openUntil.IsZero():
		c.cooldown = cd
	default:
		return
	}
	c.probing = false
	c.openUntil = now.Add(c.cooldown)
}

// State is "closed", "open" or "half_open" for a channel at now.
func (b *Breaker) State(channel string, now time.Time) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.state[channel]
	switch {
	case c == nil || c.openUntil.IsZero():
		return "closed"
	case now.Before(c.openUntil):
		return "open"
	}
	return "half_open"
}
