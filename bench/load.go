package bench

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Scenario is one closed-loop load: Conns workers, each with its own keep-alive connection,
// POST bodies of Batch profiles back to back for Warmup and then for Duration, the measured
// window.
type Scenario struct {
	Name     string // the figure's name, e.g. "ingest" or "floor decode-only"
	URL      string
	Key      string // Bearer key; empty: no Authorization header
	Batch    int
	Conns    int
	Warmup   time.Duration
	Duration time.Duration
	// Status is the answer that counts as success (0: 202, qgate's). PeerAnswer, when set,
	// counts a request as Batch profiles on Status alone; otherwise the body must be qgate's
	// verdict with "accepted" equal to Batch.
	Status     int
	PeerAnswer bool
	// CPU are cumulative CPU-time readers (a process each) sampled at the start and end of
	// the window; Result.CPU holds the cores each used during it.
	CPU []CPUReader
}

// CPUReader names a process and reads its cumulative CPU time.
type CPUReader struct {
	Name string
	Read func() (time.Duration, error)
}

// Result is what a scenario measured.
type Result struct {
	Scenario
	Profiles     int64           // profiles in 202s with accepted == Batch completed in the window
	Requests     int64           // such requests
	Errors       int64           // failed requests over warm-up and window: transport errors, non-202, accepted != Batch
	ErrorSamples []string        // the first few failures
	Window       time.Duration   // the measured window as it really ran
	Latencies    []time.Duration // per successful request in the window, sorted
	CPU          []float64       // cores used by each Scenario.CPU process during the window (-1: unknown)
}

// Rate is profiles per second in the window.
func (r *Result) Rate() float64 {
	if r.Window <= 0 {
		return 0
	}
	return float64(r.Profiles) / r.Window.Seconds()
}

// Quantile returns the q-quantile (0..1) of request latency, nearest rank.
func (r *Result) Quantile(q float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(r.Latencies))+0.5) - 1
	return r.Latencies[min(max(i, 0), len(r.Latencies)-1)]
}

// NewClient returns a client for conns concurrent keep-alive connections to one host.
func NewClient(conns int) *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        conns,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
			IdleConnTimeout:     time.Minute,
			DisableCompression:  true,
			WriteBufferSize:     64 << 10,
			ReadBufferSize:      64 << 10,
		},
	}
}

const maxErrorSamples = 5

// Run drives s with bodies (each of s.Batch profiles, cycled through) and returns what it
// measured. It stops early only when ctx ends.
func Run(ctx context.Context, s Scenario, bodies [][]byte) *Result {
	client := NewClient(s.Conns)
	defer client.CloseIdleConnections()

	begin := time.Now()
	t0 := begin.Add(s.Warmup)
	t1 := t0.Add(s.Duration)
	res := &Result{Scenario: s, CPU: make([]float64, len(s.CPU))}

	// CPU of each process over the window, sampled by one goroutine at t0 and t1.
	cpuDone := make(chan struct{})
	go func() {
		defer close(cpuDone)
		sample := func() []time.Duration {
			out := make([]time.Duration, len(s.CPU))
			for i, c := range s.CPU {
				d, err := c.Read()
				if err != nil {
					d = -1
				}
				out[i] = d
			}
			return out
		}
		if !sleepUntil(ctx, t0) {
			return
		}
		start, at0 := sample(), time.Now()
		if !sleepUntil(ctx, t1) {
			return
		}
		end, at1 := sample(), time.Now()
		for i := range res.CPU {
			res.CPU[i] = -1
			if start[i] >= 0 && end[i] >= 0 {
				res.CPU[i] = (end[i] - start[i]).Seconds() / at1.Sub(at0).Seconds()
			}
		}
	}()

	type tally struct {
		profiles, requests, errors int64
		samples                    []string
		lat                        []time.Duration
	}
	tallies := make([]tally, s.Conns)
	var wg sync.WaitGroup
	for w := range s.Conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := &tallies[w]
			t.lat = make([]time.Duration, 0, 1<<14)
			var buf bytes.Buffer
			next := w * len(bodies) / s.Conns // workers start at different profiles
			for ctx.Err() == nil {
				body := bodies[next%len(bodies)]
				next++
				start := time.Now()
				if start.After(t1) {
					return
				}
				status, err := post(ctx, client, s, body, &buf)
				end := time.Now()
				if err == nil {
					err = s.Check(status, buf.Bytes())
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					t.errors++
					if len(t.samples) < maxErrorSamples {
						t.samples = append(t.samples, err.Error())
					}
					continue
				}
				if end.Before(t0) || end.After(t1) {
					continue
				}
				t.profiles += int64(s.Batch)
				t.requests++
				t.lat = append(t.lat, end.Sub(start))
			}
		}()
	}
	wg.Wait()
	<-cpuDone
	res.Window = s.Duration
	for i := range tallies {
		t := &tallies[i]
		res.Profiles += t.profiles
		res.Requests += t.requests
		res.Errors += t.errors
		for _, e := range t.samples {
			if len(res.ErrorSamples) < maxErrorSamples {
				res.ErrorSamples = append(res.ErrorSamples, e)
			}
		}
		res.Latencies = append(res.Latencies, t.lat...)
	}
	slices.Sort(res.Latencies)
	return res
}

// Check says whether an answer counts as the request's Batch profiles taken: the Status (202
// by default) and, unless PeerAnswer, qgate's verdict accepting all of them.
func (s Scenario) Check(status int, body []byte) error {
	want := s.Status
	if want == 0 {
		want = http.StatusAccepted
	}
	if status != want {
		return fmt.Errorf("status %d: %.300s", status, body)
	}
	if s.PeerAnswer {
		return nil
	}
	if n := acceptedCount(body); n != s.Batch {
		return fmt.Errorf("status %d with accepted %d of %d: %.300s", status, n, s.Batch, body)
	}
	return nil
}

// post sends one body and reads the whole response into buf.
func post(ctx context.Context, client *http.Client, s Scenario, body []byte, buf *bytes.Buffer) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if s.Key != "" {
		req.Header.Set("Authorization", "Bearer "+s.Key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return resp.StatusCode, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, nil
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}
