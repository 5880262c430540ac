package simulator

import (
	"strconv"
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	w := newWindow(3, time.Second)
	for i, at := range []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond} {
		if ok, _ := w.check(t0.Add(at)); !ok {
			t.Fatalf("call %d refused", i)
		}
		w.admit(t0.Add(at))
	}
	ok, wait := w.check(t0.Add(500 * time.Millisecond))
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th call: ok=%v wait=%v, want refused with 500ms", ok, wait)
	}
	if ok, _ := w.check(t0.Add(time.Second)); !ok {
		t.Fatal("call at exactly oldest+span refused")
	}
	w.admit(t0.Add(time.Second))
	ok, wait = w.check(t0.Add(time.Second))
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("after slide: ok=%v wait=%v, want refused with 100ms", ok, wait)
	}
	var nilWindow *window
	if ok, _ := nilWindow.check(t0); !ok {
		t.Fatal("unlimited window refused")
	}
	nilWindow.admit(t0)
}

func TestRetryAfterSeconds(t *testing.T) {
	for _, tt := range []struct {
		wait time.Duration
		want int
	}{{0, 1}, {time.Millisecond, 1}, {time.Second, 1}, {1001 * time.Millisecond, 2}, {59 * time.Second, 59}} {
		if got := retryAfterSeconds(tt.wait); got != tt.want {
			t.Errorf("retryAfterSeconds(%v) = %d, want %d", tt.wait, got, tt.want)
		}
	}
}

// post sends a valid event through the handler at the fake clock's time.
func postEvent(sim *Simulator, id, token string) (int, string) {
	rec := serve(sim, "POST", "/events/"+id, map[string]string{"Content-Type": "application/json", "X-API-TOKEN": token}, `{}`)
	return rec.Code, rec.Header().Get("Retry-After")
}

func TestRateLimitSlidingWindow(t *testing.T) {
	clock := newFakeClock()
	sim := New(Config{RatePerMinute: 5, RateWindow: 10 * time.Second, RateGrace: -1, Now: clock.Now})
	sim.AddWorkflow(Workflow{ID: wfID, Username: wfUser, Token: wfToken})

	// A burst of 5 is admitted, the 6th refused with Retry-After.
	for i := range 5 {
		if code, _ := postEvent(sim, wfID, wfToken); code != 200 {
			t.Fatalf("call %d: %d", i, code)
		}
		clock.Advance(time.Second)
	}
	// t=5s: oldest admitted at 0s frees at 10s.
	code, ra := postEvent(sim, wfID, wfToken)
	if code != 429 || ra != "5" {
		t.Fatalf("6th call: %d Retry-After %q, want 429 and 5", code, ra)
	}
	clock.Advance(4999 * time.Millisecond)
	if code, ra := postEvent(sim, wfID, wfToken); code != 429 || ra != "1" {
		t.Fatalf("just before slide: %d %q, want 429 and 1", code, ra)
	}
	clock.Advance(time.Millisecond) // t=10s
	if code, _ := postEvent(sim, wfID, wfToken); code != 200 {
		t.Fatalf("after slide: %d", code)
	}
	// Refused calls are recorded and counted but do not use the window.
	st := sim.Stats().Workflows[wfID]
	if st.RateLimited != 2 || st.Runs != 8 {
		t.Errorf("stats = %+v", st)
	}
	runs := sim.Runs(wfID)
	if r := runs[5]; r.Status != 429 || r.Outcome != OutcomeFailed {
		t.Errorf("429 run = %+v", r)
	}
}

// TestRateLimitPacedClientNeverRefused: a client spacing calls exactly
// window/limit apart (a token bucket of burst 1) is never refused.
func TestRateLimitPacedClientNeverRefused(t *testing.T) {
	for _, grace := range []time.Duration{-1, 0} {
		clock := newFakeClock()
		sim := New(Config{RatePerMinute: 3000, RateGrace: grace, Now: clock.Now})
		sim.AddWorkflow(Workflow{ID: wfID, Username: wfUser, Token: wfToken})
		interval := time.Minute / 3000
		for i := range 9000 {
			if code, _ := postEvent(sim, wfID, wfToken); code != 200 {
				t.Fatalf("grace %v: paced call %d refused: %d", grace, i, code)
			}
			clock.Advance(interval)
		}
		// Going faster is refused within one window.
		refused := false
		for range 3001 {
			if code, _ := postEvent(sim, wfID, wfToken); code == 429 {
				refused = true
				break
			}
			clock.Advance(interval / 2)
		}
		if !refused {
			t.Errorf("grace %v: a client at twice the rate was never refused", grace)
		}
	}
}

func TestRateLimitGraceAbsorbsJitter(t *testing.T) {
	clock := newFakeClock()
	sim := New(Config{RatePerMinute: 10, RateWindow: time.Second, Now: clock.Now}) // grace 10ms
	sim.AddWorkflow(Workflow{ID: wfID, Username: wfUser, Token: wfToken})
	clock.Advance(5 * time.Millisecond) // the first call arrives late
	for i := range 30 {
		if code, _ := postEvent(sim, wfID, wfToken); code != 200 {
			t.Fatalf("call %d refused", i)
		}
		if i == 0 {
			clock.Advance(95 * time.Millisecond)
		} else {
			clock.Advance(100 * time.Millisecond)
		}
	}
}

func TestRateLimitPerWorkflowAndToken(t *testing.T) {
	clock := newFakeClock()
	sim := New(Config{RatePerMinute: 2, RateWindow: time.Second, RateGrace: -1, PerTokenRate: 3, Now: clock.Now})
	sim.AddWorkflow(Workflow{ID: "A", Username: "u", Token: "shared"})
	sim.AddWorkflow(Workflow{ID: "B", Username: "u", Token: "shared", RatePerMinute: 10})
	sim.AddWorkflow(Workflow{ID: "C", Username: "u", Token: "other", RatePerMinute: -1})

	want := []struct {
		id, token string
		code      int
	}{
		{"A", "shared", 200}, {"A", "shared", 200}, {"A", "shared", 429}, // workflow limit 2
		{"B", "shared", 200}, {"B", "shared", 429}, // token limit 3 across A and B
		{"C", "other", 200}, {"C", "other", 200}, {"C", "other", 200}, {"C", "other", 429}, // token limit, workflow unlimited
	}
	for i, w := range want {
		if code, ra := postEvent(sim, w.id, w.token); code != w.code || (code == 429 && ra != "1") {
			t.Errorf("call %d to %s: %d Retry-After %q, want %d", i, w.id, code, ra, w.code)
		}
	}
	clock.Advance(time.Second)
	if code, _ := postEvent(sim, "B", "shared"); code != 200 {
		t.Errorf("after the window: %d", code)
	}
}

func TestRateChangeViaAddWorkflow(t *testing.T) {
	clock := newFakeClock()
	sim := New(Config{RatePerMinute: 1, RateWindow: time.Second, Now: clock.Now})
	sim.AddWorkflow(Workflow{ID: wfID, Username: wfUser, Token: wfToken})
	postEvent(sim, wfID, wfToken)
	if code, _ := postEvent(sim, wfID, wfToken); code != 429 {
		t.Fatalf("code %d", code)
	}
	sim.AddWorkflow(Workflow{ID: wfID, Username: wfUser, Token: wfToken, RatePerMinute: 5})
	for i := range 5 {
		if code, _ := postEvent(sim, wfID, wfToken); code != 200 {
			t.Fatalf("call %d after raising the rate: %d", i, code)
		}
	}
	if n := len(sim.Runs(wfID)); n != 7 {
		t.Errorf("runs kept across update = %d", n)
	}
}

func BenchmarkEvent(b *testing.B) {
	keep := false
	sim := New(Config{RatePerMinute: -1, KeepBodies: &keep, MaxRuns: 1000})
	sim.AddWorkflow(Workflow{ID: wfID, Username: wfUser, Token: wfToken})
	h := map[string]string{"Content-Type": "application/json", "Authorization": basic(wfUser, wfToken)}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			if rec := serve(sim, "POST", "/events/"+wfID, h, `{"n":`+strconv.Itoa(i)+`}`); rec.Code != 200 {
				b.Fatalf("status %d", rec.Code)
			}
		}
	})
}
