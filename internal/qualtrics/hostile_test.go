package qualtrics

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// rawServer is a TCP server on 127.0.0.1 that reads each request (head and body, so the client's
// write completes) and then lets respond write whatever bytes it likes: net/http's server cannot
// misbehave enough. respond gets a channel closed when the test ends; written counts the bytes
// respond managed to write.
type rawServer struct {
	url     string
	written atomic.Int64
	conns   atomic.Int64
}

func newRawServer(t *testing.T, respond func(w io.Writer, done <-chan struct{})) *rawServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &rawServer{url: "http://" + ln.Addr().String()}
	done := make(chan struct{})
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		open  = map[net.Conn]bool{}
		ended bool
	)
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			if ended {
				mu.Unlock()
				c.Close()
				return
			}
			open[c] = true
			mu.Unlock()
			s.conns.Add(1)
			wg.Go(func() {
				defer func() {
					mu.Lock()
					delete(open, c)
					mu.Unlock()
					c.Close()
				}()
				req, err := http.ReadRequest(bufio.NewReader(c))
				if err != nil {
					return
				}
				_, _ = io.Copy(io.Discard, req.Body)
				respond(countingWriter{c, &s.written}, done)
			})
		}
	})
	t.Cleanup(func() {
		close(done)
		ln.Close()
		mu.Lock()
		ended = true
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return s
}

type countingWriter struct {
	w io.Writer
	n *atomic.Int64
}

func (c countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

// drip writes b one byte every interval, cycling, until a write fails or done closes.
func drip(w io.Writer, done <-chan struct{}, interval time.Duration, b string) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for i := 0; ; i++ {
		if _, err := io.WriteString(w, b[i%len(b):i%len(b)+1]); err != nil {
			return
		}
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// assertSafeExcerpt checks what the brief of Outcome.Excerpt promises: valid UTF-8, bounded, and
// no control character but newline and tab (nor a bidi override), so it can be stored in any
// database and shown in any terminal or browser.
func assertSafeExcerpt(t *testing.T, ex string) {
	t.Helper()
	if !utf8.ValidString(ex) {
		t.Errorf("excerpt is not valid UTF-8: %q", ex)
	}
	if len(ex) > ExcerptBytes {
		t.Errorf("excerpt is %d bytes, more than %d", len(ex), ExcerptBytes)
	}
	for _, r := range ex {
		if (unicode.IsControl(r) && r != '\n' && r != '\t') || unicode.Is(unicode.Bidi_Control, r) {
			t.Errorf("excerpt carries control character %U: %q", r, ex)
			return
		}
	}
}

// allocated returns how many bytes the process allocated while f ran.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

func send(c *Client, url string) Result {
	return c.Send(context.Background(), Request{URL: url + "/e?k=v", Username: "u", Token: testToken, Body: []byte(`{}`)})
}

// TestSendHostileBodyText: a body with NUL bytes, invalid UTF-8, terminal escapes, carriage
// returns or bidi overrides yields an excerpt that any store accepts and any screen shows as it
// is (PostgreSQL refuses a NUL in text; an ESC sequence rewrites an operator's terminal).
func TestSendHostileBodyText(t *testing.T) {
	tests := []struct {
		name, body string
		keep       []string // readable parts that must survive
	}{
		{"NUL bytes", "{\"error\":\"bad\x00request\"}\x00\x00\x00", []string{`{"error":"bad`, `request"}`}},
		{"only NULs", strings.Repeat("\x00", 4096), nil},
		{"invalid UTF-8", "{\"error\":\"caf\xe9 \xff\xfe\xc3\x28\"}", []string{`{"error":"caf`}},
		{"terminal escapes", "ok\x1b[2J\x1b]0;owned\x07\r\nnext\tline\nend\x7f\u0085", []string{"ok", "next\tline\nend"}},
		{"bidi override", "user \u202Egnp.exe\u202C done", []string{"user ", "gnp.exe", " done"}},
		{"NUL past the cut", strings.Repeat("a", ExcerptBytes-2) + "\x00\x00\x00\x00", []string{strings.Repeat("a", ExcerptBytes-2)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newRawServer(t, func(w io.Writer, _ <-chan struct{}) {
				fmt.Fprintf(w, "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(tt.body), tt.body)
			})
			res := send(privateClient(2*time.Second), srv.url)
			if res.Class != Permanent || res.Reason != ReasonClientError || res.Status != 400 {
				t.Fatalf("result = %+v", res)
			}
			assertSafeExcerpt(t, res.Excerpt)
			for _, k := range tt.keep {
				if !strings.Contains(res.Excerpt, k) {
					t.Errorf("excerpt %q lost %q", res.Excerpt, k)
				}
			}
			if res.Excerpt == "" {
				t.Error("excerpt is empty: the operator should see that the body was unreadable")
			}
		})
	}
}

// TestSendHugeBody: a 10 MB answer costs neither memory nor the attempt's timeout: the client
// keeps an excerpt, discards at most a small bound more, and closes the connection.
func TestSendHugeBody(t *testing.T) {
	const size = 10 << 20
	chunk := []byte(strings.Repeat("x", 32<<10))
	for _, status := range []int{200, 400} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := newRawServer(t, func(w io.Writer, _ <-chan struct{}) {
				fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Length: %d\r\n\r\n", status, http.StatusText(status), size)
				for n := 0; n < size; n += len(chunk) {
					if _, err := w.Write(chunk); err != nil {
						return
					}
				}
			})
			c := privateClient(10 * time.Second)
			var res Result
			start := time.Now()
			alloc := allocated(func() { res = send(c, srv.url) })
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("Send took %v: it read the body instead of closing the connection", elapsed)
			}
			if want := Classify(status, nil, nil, nil, time.Now()); res.Class != want.Class || res.Reason != want.Reason {
				t.Fatalf("result = %+v", res)
			}
			if len(res.Excerpt) != ExcerptBytes || strings.Trim(res.Excerpt, "x") != "" {
				t.Errorf("excerpt = %d bytes %.40q…", len(res.Excerpt), res.Excerpt)
			}
			if alloc > 2<<20 {
				t.Errorf("Send allocated %d KB for a %d MB body", alloc>>10, size>>20)
			}
		})
	}
}

// TestSendDripBeforeStatus: a destination that answers one byte a second never completes its
// status line; the attempt ends at its timeout, retryable like any timeout.
func TestSendDripBeforeStatus(t *testing.T) {
	srv := newRawServer(t, func(w io.Writer, done <-chan struct{}) {
		drip(w, done, 50*time.Millisecond, "HTTP/1.1 200 OK\r\nX-Slow: "+strings.Repeat("z", 1000))
	})
	const timeout = 400 * time.Millisecond
	start := time.Now()
	res := send(privateClient(timeout), srv.url)
	if elapsed := time.Since(start); elapsed < timeout || elapsed > timeout+time.Second {
		t.Errorf("returned after %v, want about %v", elapsed, timeout)
	}
	if res.Class != Retryable || res.Reason != ReasonTimeout || res.Status != 0 {
		t.Fatalf("result = %+v", res)
	}
	assertSafeExcerpt(t, res.Excerpt)
}

// TestSendDripBody: the status and headers arrive, the body drips forever. The attempt still ends
// at its timeout; the status decides the class (a 2xx was accepted by the destination; a retry
// would only duplicate it), and the excerpt says the body was cut short.
func TestSendDripBody(t *testing.T) {
	for _, status := range []int{200, 400, 503} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := newRawServer(t, func(w io.Writer, done <-chan struct{}) {
				fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Length: 100000\r\n\r\n{\"meta\":", status, http.StatusText(status))
				drip(w, done, 50*time.Millisecond, "\x00abc")
			})
			const timeout = 400 * time.Millisecond
			start := time.Now()
			res := send(privateClient(timeout), srv.url)
			if elapsed := time.Since(start); elapsed < timeout || elapsed > timeout+time.Second {
				t.Errorf("returned after %v, want about %v", elapsed, timeout)
			}
			if want := Classify(status, nil, nil, nil, time.Now()); res.Class != want.Class || res.Reason != want.Reason || res.Status != status {
				t.Fatalf("result = %+v, want %v/%s", res, want.Class, want.Reason)
			}
			if !strings.HasPrefix(res.Excerpt, `{"meta":`) || !strings.Contains(res.Excerpt, "timed out") {
				t.Errorf("excerpt = %q, want the body read so far and a note that the attempt timed out", res.Excerpt)
			}
			assertSafeExcerpt(t, res.Excerpt)
		})
	}
}

// TestSendEndlessHeaders: headers that never end, slowly (the attempt times out) or fast (the
// client stops at a small header limit instead of buffering megabytes); retryable either way.
func TestSendEndlessHeaders(t *testing.T) {
	line := "X-Filler: " + strings.Repeat("h", 1000) + "\r\n"
	t.Run("slow", func(t *testing.T) {
		srv := newRawServer(t, func(w io.Writer, done <-chan struct{}) {
			_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\n")
			drip(w, done, 20*time.Millisecond, line)
		})
		const timeout = 400 * time.Millisecond
		start := time.Now()
		res := send(privateClient(timeout), srv.url)
		if elapsed := time.Since(start); elapsed < timeout || elapsed > timeout+time.Second {
			t.Errorf("returned after %v, want about %v", elapsed, timeout)
		}
		if res.Class != Retryable || res.Reason != ReasonTimeout || res.Status != 0 {
			t.Fatalf("result = %+v", res)
		}
		assertSafeExcerpt(t, res.Excerpt)
	})
	t.Run("fast", func(t *testing.T) {
		srv := newRawServer(t, func(w io.Writer, done <-chan struct{}) {
			_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\n")
			for {
				select {
				case <-done:
					return
				default:
				}
				if _, err := io.WriteString(w, line); err != nil {
					return
				}
			}
		})
		var res Result
		// allocated counts the whole process, so another test's goroutine still running adds to
		// it on a busy machine: the least of three attempts is what Send itself cost (buffering
		// the headers would cost megabytes every time).
		alloc := uint64(math.MaxUint64)
		for range 3 {
			start := time.Now()
			alloc = min(alloc, allocated(func() { res = send(privateClient(10*time.Second), srv.url) }))
			if elapsed := time.Since(start); elapsed > 3*time.Second {
				t.Errorf("returned after %v", elapsed)
			}
			if alloc <= 2<<20 {
				break
			}
		}
		if res.Class != Retryable || res.Reason != ReasonConnectionError || res.Status != 0 {
			t.Fatalf("result = %+v", res)
		}
		if !strings.Contains(res.Excerpt, "header") {
			t.Errorf("excerpt %q does not say the headers were too long", res.Excerpt)
		}
		if alloc > 2<<20 {
			t.Errorf("Send allocated %d KB reading endless headers", alloc>>10)
		}
		assertSafeExcerpt(t, res.Excerpt)
	})
}

// TestSendRedirectsHostile: a redirect — to a private or metadata address, or anywhere — is never
// followed (it would re-POST the payload, and for 307/308 the credentials' target would change);
// it is a permanent failure whose excerpt names where it pointed (without its query, which may
// carry identifiers, and without the token if the destination echoed it).
func TestSendRedirectsHostile(t *testing.T) {
	target := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {})
	locations := []struct{ location, shown string }{
		{target.URL + "/stolen?x=1", target.URL + "/stolen"},
		{"http://10.1.2.3/internal", "http://10.1.2.3/internal"},
		{"http://169.254.169.254/latest/meta-data/", "http://169.254.169.254/latest/meta-data/"},
		{"https://attacker.example/collect?t=" + testToken, "https://attacker.example/collect"},
		{"/relative/path?q=1", "/relative/path"},
		{"http://user:pass@evil.example/ \tx", "http://evil.example/"},
	}
	for _, code := range []int{301, 302, 307, 308} {
		for _, loc := range locations {
			t.Run(fmt.Sprintf("%d %s", code, loc.shown), func(t *testing.T) {
				srv := newRawServer(t, func(w io.Writer, _ <-chan struct{}) {
					body := "<a href=\"x\">moved</a>\x00"
					fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nLocation: %s\r\nContent-Length: %d\r\n\r\n%s", code, http.StatusText(code), loc.location, len(body), body)
				})
				res := send(privateClient(2*time.Second), srv.url)
				if res.Class != Permanent || res.Reason != ReasonRedirect || res.Status != code {
					t.Fatalf("result = %+v", res)
				}
				if !strings.Contains(res.Excerpt, "Location: "+loc.shown) {
					t.Errorf("excerpt %q does not name the Location %q", res.Excerpt, loc.shown)
				}
				if strings.Contains(res.Excerpt, "?") || strings.Contains(res.Excerpt, "pass") {
					t.Errorf("excerpt %q carries the Location's query or userinfo", res.Excerpt)
				}
				assertSafeExcerpt(t, res.Excerpt)
				assertNoSecret(t, res)
			})
		}
	}
	if n := target.requests.Load(); n != 0 {
		t.Errorf("redirect target received %d requests", n)
	}
	t.Run("NUL in Location", func(t *testing.T) {
		// net/http refuses the header line: a malformed answer, retryable like a broken connection.
		srv := newRawServer(t, func(w io.Writer, _ <-chan struct{}) {
			_, _ = io.WriteString(w, "HTTP/1.1 302 Found\r\nLocation: http://10.0.0.1/\x00x\r\nContent-Length: 0\r\n\r\n")
		})
		res := send(privateClient(2*time.Second), srv.url)
		if res.Class != Retryable || res.Reason != ReasonConnectionError {
			t.Fatalf("result = %+v", res)
		}
		assertSafeExcerpt(t, res.Excerpt)
	})
}
