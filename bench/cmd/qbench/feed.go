//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qgate/qgate/bench"
)

// feeder ingests routed profiles (bench.AppendRoutedBody: profile i in audience i % audiences)
// into qgate over conns keep-alive connections, closed loop, but only while allow says so: the
// delivery scenarios use it to keep the pipeline full without letting a backlog build up.
type feeder struct {
	url, key  string
	batch     int
	audiences int
	client    *http.Client
	// peer: the target is the Benthos peer (bench/peer), which takes a batch as a bare JSON
	// array and answers 200 with no verdict once the request's profiles are through.
	peer bool

	next     atomic.Int64 // next profile number
	accepted atomic.Int64 // profiles in 202s with accepted == batch
	errors   atomic.Int64
	mu       sync.Mutex
	samples  []string
}

func newFeeder(base, key string, batch, audiences, conns int) *feeder {
	return &feeder{url: base + "/v1/profiles", key: key, batch: batch, audiences: audiences, client: bench.NewClient(conns)}
}

// newPeerFeeder is newFeeder for the Benthos peer listening at base.
func newPeerFeeder(base string, batch, audiences, conns int) *feeder {
	f := newFeeder(base, "", batch, audiences, conns)
	f.peer = true
	return f
}

// body appends the request body of n profiles from first, in the target's form.
func (f *feeder) body(dst []byte, first, n int) []byte {
	dst = bench.AppendRoutedBody(dst, first, n, f.audiences)
	if f.peer {
		return bench.AsArray(dst)
	}
	return dst
}

// check says whether an answer took all n profiles of its request.
func (f *feeder) check(status int, body []byte, n int) error {
	if f.peer {
		return bench.Scenario{Batch: n, Status: http.StatusOK, PeerAnswer: true}.Check(status, body)
	}
	return bench.Scenario{Batch: n}.Check(status, body)
}

// run drives conns workers until ctx ends or limit profiles were handed out (0: no limit).
// allow is asked before every request.
func (f *feeder) run(ctx context.Context, conns int, limit int64, allow func() bool) {
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body []byte
			var resp bytes.Buffer
			for ctx.Err() == nil {
				if !allow() {
					if !sleepCtx(ctx, 2*time.Millisecond) {
						return
					}
					continue
				}
				first := f.next.Add(int64(f.batch)) - int64(f.batch)
				if limit > 0 && first >= limit {
					return
				}
				n := f.batch
				if limit > 0 && first+int64(n) > limit {
					n = int(limit - first)
				}
				body = f.body(body[:0], int(first), n)
				status, err := f.post(ctx, body, &resp)
				if err == nil {
					err = f.check(status, resp.Bytes(), n)
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					f.errors.Add(1)
					f.mu.Lock()
					if len(f.samples) < 5 {
						f.samples = append(f.samples, err.Error())
					}
					f.mu.Unlock()
					sleepCtx(ctx, 50*time.Millisecond)
					continue
				}
				f.accepted.Add(int64(n))
			}
		}()
	}
	wg.Wait()
	f.client.CloseIdleConnections()
}

func (f *feeder) post(ctx context.Context, body []byte, buf *bytes.Buffer) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if f.key != "" {
		req.Header.Set("Authorization", "Bearer "+f.key)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return resp.StatusCode, err
	}
	return resp.StatusCode, nil
}

func (f *feeder) errorSamples() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.samples...)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// cpuSampler reads the cumulative CPU of several processes.
type cpuSampler []struct {
	name string
	read func() (time.Duration, error)
}

func (c cpuSampler) sample() []time.Duration {
	out := make([]time.Duration, len(c))
	for i, p := range c {
		d, err := p.read()
		if err != nil {
			d = -1
		}
		out[i] = d
	}
	return out
}

// cores formats the cores each process used between a and b, over wall.
func (c cpuSampler) cores(a, b []time.Duration, wall time.Duration) string {
	var buf bytes.Buffer
	for i, p := range c {
		if a[i] < 0 || b[i] < 0 {
			continue
		}
		if buf.Len() > 0 {
			buf.WriteByte(',')
		}
		fmt.Fprintf(&buf, "%s:%.2f", p.name, (b[i]-a[i]).Seconds()/wall.Seconds())
	}
	return buf.String()
}

func (s *stack) cpuSampler() cpuSampler {
	c := cpuSampler{
		{"qgate", s.serve.cpu},
		{"broker", s.broker.cpu},
		{"qbench", selfCPU},
	}
	if s.cfg.postgres {
		c = append(c, struct {
			name string
			read func() (time.Duration, error)
		}{"postgres(all)", postgresCPU})
	}
	return c
}

// postgresCPU sums the CPU of every process named postgres on this machine: the server is
// shared, so this includes other clients' backends (read it as an upper bound for qgate's).
func postgresCPU() (time.Duration, error) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil || !bytes.Contains(b, []byte("(postgres)")) {
			continue
		}
		if t, err := pidCPU(pid); err == nil {
			sum += t
		}
	}
	return sum, nil
}

// pidCPU reads a process's cumulative user+system CPU time from /proc/<pid>/stat (fields 14
// and 15 after the parenthesised command name, in USER_HZ = 100 ticks a second).
func pidCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat format", pid)
	}
	f := bytes.Fields(b[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat format", pid)
	}
	ut, err1 := strconv.ParseInt(string(f[11]), 10, 64)
	st, err2 := strconv.ParseInt(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("unexpected /proc/%d/stat format", pid)
	}
	return time.Duration(ut+st) * time.Second / 100, nil
}
