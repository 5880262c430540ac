package bench

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Sink is the destination side of the delivery benchmarks: a minimal HTTP server that stands
// in for Qualtrics JSON-event URLs (POST /events/<workflow>) on loopback. It reads each body,
// answers at once (200, or the configured failure status) and counts arrivals. Unlike the
// simulator it keeps no run history and enforces no rate limit, so that it costs as little CPU
// as possible next to qgate on the same machine.
//
// With Track > 0 it also records, for profile numbers 0..Track-1 (the N of personN@example.com,
// see AppendRoutedProfile), the time of the first arrival, for end-to-end latency.
type Sink struct {
	srv *http.Server
	ln  net.Listener

	status atomic.Int32 // answer for every call: 200 or e.g. 503

	arrivals atomic.Int64 // every call answered, whatever its status
	ok       atomic.Int64 // calls answered 2xx
	dups     atomic.Int64 // calls whose Idempotency-Key arrived before (2xx ones only)
	badBody  atomic.Int64 // calls without a recognisable profile number
	conns    atomic.Int64 // TCP connections accepted (keep-alive reuse keeps this low)

	mu   sync.Mutex
	keys map[string]struct{} // Idempotency-Keys of 2xx calls, when DedupKeys

	dedup bool
	first []atomic.Int64 // profile number → UnixNano of the first 2xx arrival (0: none yet)
}

// SinkOptions configures StartSink.
type SinkOptions struct {
	Status    int  // answer with this status (default 200)
	DedupKeys bool // count repeated Idempotency-Keys (a map of every key seen)
	Track     int  // record first-arrival times for profile numbers below this
}

// StartSink starts a sink on a free loopback port.
func StartSink(o SinkOptions) (*Sink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Sink{ln: ln, dedup: o.DedupKeys, keys: map[string]struct{}{}}
	if o.Status == 0 {
		o.Status = http.StatusOK
	}
	s.status.Store(int32(o.Status))
	if o.Track > 0 {
		s.first = make([]atomic.Int64, o.Track)
	}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.handle), ReadHeaderTimeout: 10 * time.Second,
		ConnState: func(_ net.Conn, st http.ConnState) {
			if st == http.StateNew {
				s.conns.Add(1)
			}
		}}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// EventURL is the JSON-event URL of workflow id on this sink.
func (s *Sink) EventURL(id string) string { return "http://" + s.ln.Addr().String() + "/events/" + id }

// SetStatus changes the answer for subsequent calls.
func (s *Sink) SetStatus(code int) { s.status.Store(int32(code)) }

// Close stops the sink.
func (s *Sink) Close() error { return s.srv.Close() }

// SinkCounts is a snapshot of the sink's counters.
type SinkCounts struct {
	Arrivals, OK, Duplicates, BadBody int64
	Conns                             int64 // connections accepted
}

// Counts returns the counters now.
func (s *Sink) Counts() SinkCounts {
	return SinkCounts{Arrivals: s.arrivals.Load(), OK: s.ok.Load(), Duplicates: s.dups.Load(), BadBody: s.badBody.Load(), Conns: s.conns.Load()}
}

// Delivered is the number of 2xx calls so far.
func (s *Sink) Delivered() int64 { return s.ok.Load() }

// FirstArrival returns when profile n first arrived (zero time: not yet, or not tracked).
func (s *Sink) FirstArrival(n int) (time.Time, bool) {
	if n < 0 || n >= len(s.first) {
		return time.Time{}, false
	}
	v := s.first[n].Load()
	if v == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, v), true
}

var sinkOK = []byte(`{"result":{"status":"triggered"},"meta":{"httpStatus":"200 - OK"}}`)

func (s *Sink) handle(w http.ResponseWriter, r *http.Request) {
	now := time.Now()
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	_, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, 1<<20))
	s.arrivals.Add(1)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	status := int(s.status.Load())
	if status < 200 || status > 299 {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = fmt.Fprintf(w, `{"meta":{"httpStatus":"%d","error":{"errorMessage":"benchmark sink failure"}}}`, status)
		return
	}
	s.ok.Add(1)
	if s.dedup {
		key := r.Header.Get("Idempotency-Key")
		s.mu.Lock()
		_, seen := s.keys[key]
		if !seen {
			s.keys[key] = struct{}{}
		}
		s.mu.Unlock()
		if seen {
			s.dups.Add(1)
		}
	}
	if s.first != nil {
		n := ProfileNumber(buf.Bytes())
		if n < 0 {
			s.badBody.Add(1)
		} else if n < len(s.first) {
			s.first[n].CompareAndSwap(0, now.UnixNano())
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(sinkOK)
}

// ProfileNumber finds N in the first "person<N>@example.com" of a delivered payload (the email
// identity of AppendProfile / AppendRoutedProfile); -1 when there is none.
func ProfileNumber(body []byte) int {
	const pre = `"person`
	i := bytes.Index(body, []byte(pre))
	for i >= 0 {
		j := i + len(pre)
		k := j
		for k < len(body) && body[k] >= '0' && body[k] <= '9' {
			k++
		}
		if k > j && bytes.HasPrefix(body[k:], []byte("@example.com")) {
			n, err := strconv.Atoi(string(body[j:k]))
			if err == nil {
				return n
			}
		}
		next := bytes.Index(body[j:], []byte(pre))
		if next < 0 {
			break
		}
		i = j + next
	}
	return -1
}
