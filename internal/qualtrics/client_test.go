package qualtrics

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const testToken = "tok_9f8e7d6c5b4a39281706f5e4d3c2b1a0"

// server is an httptest server on 127.0.0.1 that counts requests and new connections.
type server struct {
	*httptest.Server
	requests atomic.Int64
	conns    atomic.Int64
}

func newServer(t *testing.T, tls bool, h http.HandlerFunc) *server {
	t.Helper()
	s := &server{}
	s.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		h(w, r)
	}))
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS tests provoke handshake errors on purpose
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			s.conns.Add(1)
		}
	}
	if tls {
		s.StartTLS()
	} else {
		s.Start()
	}
	t.Cleanup(s.Close)
	return s
}

func privateClient(timeout time.Duration) *Client {
	return NewClient(Options{Timeout: timeout, UserAgent: "qgate/1.2.3", Policy: HostPolicy{AllowPrivate: true}})
}

func TestSendHeadersBodyAndQuery(t *testing.T) {
	type seen struct {
		method, path, rawQuery, ctype, ua, idem, auth string
		user, pass                                    string
		basicOK                                       bool
		body                                          []byte
	}
	got := make(chan seen, 1)
	srv := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		u, p, ok := r.BasicAuth()
		got <- seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), r.Header.Get("User-Agent"),
			r.Header.Get("Idempotency-Key"), r.Header.Get("Authorization"), u, p, ok, b}
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, `{"meta":{"httpStatus":"202 - Accepted","requestId":"r1"}}`)
	})
	query := "eventId=EV_1%2Fx&token=a+b%20c&flag&z=%E2%82%AC"
	body := []byte(`{"email":"a@example.com","audiences":["seg1"]}`)

	res := privateClient(time.Second).Send(context.Background(), Request{
		URL: srv.URL + "/events/WF_123?" + query, Username: "brand-user", Token: testToken,
		Body: body, IdempotencyKey: "upd-1:dest-2",
	})
	if res.Class != Delivered || res.Reason != ReasonOK || res.Status != http.StatusAccepted {
		t.Fatalf("result = %+v", res)
	}
	if res.Latency <= 0 || !strings.Contains(res.Excerpt, `"requestId":"r1"`) {
		t.Errorf("latency %v excerpt %q", res.Latency, res.Excerpt)
	}
	s := <-got
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("brand-user:"+testToken))
	checks := []struct{ name, got, want string }{
		{"method", s.method, http.MethodPost},
		{"path", s.path, "/events/WF_123"},
		{"query", s.rawQuery, query},
		{"Content-Type", s.ctype, "application/json"},
		{"User-Agent", s.ua, "qgate/1.2.3"},
		{"Idempotency-Key", s.idem, "upd-1:dest-2"},
		{"Authorization", s.auth, wantAuth},
		{"basic user", s.user, "brand-user"},
		{"basic token", s.pass, testToken},
		{"body", string(s.body), string(body)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if !s.basicOK {
		t.Error("Authorization is not basic auth")
	}
}

func TestSendClassifiesResponses(t *testing.T) {
	srv := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/429":
			w.Header().Set("Retry-After", "12")
			w.WriteHeader(429)
		case "/503":
			w.Header().Set("Retry-After", "3")
			w.WriteHeader(503)
		case "/401":
			w.WriteHeader(401)
			_, _ = io.WriteString(w, `{"meta":{"httpStatus":"401 - Unauthorized","error":{"errorMessage":"bad token"}}}`)
		case "/413":
			w.WriteHeader(413)
		case "/400":
			w.WriteHeader(400)
		}
	})
	c := privateClient(time.Second)
	tests := []struct {
		path   string
		class  Class
		reason Reason
		after  time.Duration
	}{
		{"/429", Retryable, ReasonRateLimited, 12 * time.Second},
		{"/503", Retryable, ReasonServerError, 3 * time.Second},
		{"/401", DestinationFault, ReasonUnauthorized, 0},
		{"/413", Permanent, ReasonPayloadTooLarge, 0},
		{"/400", Permanent, ReasonClientError, 0},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := c.Send(context.Background(), Request{URL: srv.URL + tt.path, Token: testToken, Body: []byte(`{}`)})
			if res.Class != tt.class || res.Reason != tt.reason || res.RetryAfter != tt.after {
				t.Fatalf("got %v/%s/%v, want %v/%s/%v", res.Class, res.Reason, res.RetryAfter, tt.class, tt.reason, tt.after)
			}
		})
	}
}

func TestSendExcerptCappedAndRedacted(t *testing.T) {
	basic := base64.StdEncoding.EncodeToString([]byte("u:" + testToken))
	tests := []struct {
		name string
		body string
	}{
		{"large body", strings.Repeat("x", 200<<10)},
		{"echoes token", `{"error":"invalid token ` + testToken + `"}`},
		{"echoes authorization", `{"error":"bad header Basic ` + basic + `"}`},
		{"token straddles the cut", strings.Repeat("y", ExcerptBytes-10) + testToken + strings.Repeat("z", 100)},
		{"token past the cut", strings.Repeat("y", 1000) + testToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = io.WriteString(w, tt.body)
			})
			res := privateClient(time.Second).Send(context.Background(),
				Request{URL: srv.URL + "/e", Username: "u", Token: testToken, Body: []byte(`{}`)})
			if res.Reason != ReasonClientError {
				t.Fatalf("reason %s", res.Reason)
			}
			if len(res.Excerpt) > ExcerptBytes {
				t.Errorf("excerpt is %d bytes", len(res.Excerpt))
			}
			assertNoSecret(t, res, basic)
		})
	}
}

func assertNoSecret(t *testing.T, res Result, extra ...string) {
	t.Helper()
	for _, s := range append([]string{testToken, testToken[:16], testToken[16:]}, extra...) {
		if strings.Contains(res.Excerpt, s) || strings.Contains(string(res.Reason), s) {
			t.Errorf("result leaks a secret: %+v", res)
		}
	}
}

func TestSendLargeResponseReusesConnection(t *testing.T) {
	big := strings.Repeat("b", 32<<10) // over MaxResponseBytes, under the drain limit
	srv := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, big)
	})
	c := privateClient(time.Second)
	for i := range 20 {
		if res := c.Send(context.Background(), Request{URL: srv.URL, Token: testToken, Body: []byte(`{}`)}); res.Class != Delivered {
			t.Fatalf("send %d: %+v", i, res)
		}
	}
	if n := srv.conns.Load(); n != 1 {
		t.Errorf("opened %d connections for 20 sequential requests, want 1", n)
	}
}

func TestSendConcurrent(t *testing.T) {
	srv := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusOK)
	})
	c := NewClient(Options{Timeout: 5 * time.Second, Policy: HostPolicy{AllowPrivate: true}, MaxIdleConnsPerHost: 8})
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if c.Send(context.Background(), Request{URL: srv.URL, Token: testToken, Body: []byte(`{}`)}).Class != Delivered {
					failed.Add(1)
				}
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 || srv.requests.Load() != 400 {
		t.Fatalf("failed %d, server saw %d of 400", failed.Load(), srv.requests.Load())
	}
	// Keep-alive reuse: 400 requests over a handful of connections. Not exactly 8: when a
	// request finds no idle connection because another worker is just returning one, the
	// transport dials a new one (and keeps whichever is free first), so under load a few more
	// than 8 are opened; without reuse it would be 400.
	if n := srv.conns.Load(); n > 16 {
		t.Errorf("opened %d connections for 400 requests from 8 workers; keep-alive not reused", n)
	}
}

// hangingServer accepts requests and never answers until the test ends.
func hangingServer(t *testing.T) *server {
	done := make(chan struct{})
	srv := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-done:
		case <-r.Context().Done():
		}
	})
	t.Cleanup(func() { close(done) }) // runs before srv.Close
	return srv
}

func TestSendTimeout(t *testing.T) {
	srv := hangingServer(t)
	const timeout = 200 * time.Millisecond
	start := time.Now()
	res := privateClient(timeout).Send(context.Background(), Request{URL: srv.URL + "/e?k=v", Token: testToken, Body: []byte(`{}`)})
	elapsed := time.Since(start)
	if res.Class != Retryable || res.Reason != ReasonTimeout || res.Status != 0 {
		t.Fatalf("result = %+v", res)
	}
	if elapsed < timeout || elapsed > timeout+time.Second {
		t.Errorf("returned after %v, want about %v", elapsed, timeout)
	}
	if strings.Contains(res.Excerpt, "k=v") {
		t.Errorf("excerpt carries the URL query: %q", res.Excerpt)
	}
	assertNoSecret(t, res)
}

func TestSendCallerDeadlineIsTimeout(t *testing.T) {
	srv := hangingServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	res := privateClient(10*time.Second).Send(ctx, Request{URL: srv.URL, Token: testToken, Body: []byte(`{}`)})
	if res.Class != Retryable || res.Reason != ReasonTimeout {
		t.Fatalf("result = %+v", res)
	}
}

func TestSendCanceled(t *testing.T) {
	srv := hangingServer(t)
	c := privateClient(10 * time.Second)
	t.Run("while waiting", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		res := c.Send(ctx, Request{URL: srv.URL, Token: testToken, Body: []byte(`{}`)})
		if res.Class != Retryable || res.Reason != ReasonCanceled {
			t.Fatalf("result = %+v", res)
		}
	})
	t.Run("before sending", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		res := c.Send(ctx, Request{URL: srv.URL, Token: testToken, Body: []byte(`{}`)})
		if res.Class != Retryable || res.Reason != ReasonCanceled {
			t.Fatalf("result = %+v", res)
		}
	})
}

func TestSendConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	res := privateClient(time.Second).Send(context.Background(), Request{URL: "http://" + addr + "/e", Token: testToken, Body: []byte(`{}`)})
	if res.Class != Retryable || res.Reason != ReasonConnectionError || res.Excerpt == "" {
		t.Fatalf("result = %+v", res)
	}
	assertNoSecret(t, res)
}

func TestSendConnectionReset(t *testing.T) {
	srv := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = conn.Close()
		}
	})
	res := privateClient(time.Second).Send(context.Background(), Request{URL: srv.URL, Token: testToken, Body: []byte(`{}`)})
	if res.Class != Retryable || res.Reason != ReasonConnectionError {
		t.Fatalf("result = %+v", res)
	}
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	target := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {})
	for _, code := range []int{301, 302, 307, 308} {
		redirector := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+"/stolen", code)
		})
		res := privateClient(time.Second).Send(context.Background(), Request{URL: redirector.URL, Token: testToken, Body: []byte(`{}`)})
		if res.Class != Permanent || res.Reason != ReasonRedirect || res.Status != code {
			t.Errorf("%d: result = %+v", code, res)
		}
	}
	if n := target.requests.Load(); n != 0 {
		t.Errorf("redirect target received %d requests", n)
	}
}

func TestSendDialTimeGuard(t *testing.T) {
	tlsSrv := newServer(t, true, func(w http.ResponseWriter, r *http.Request) {})
	plain := newServer(t, false, func(w http.ResponseWriter, r *http.Request) {})
	port := func(s *server) string { _, p, _ := net.SplitHostPort(s.Listener.Addr().String()); return p }

	tests := []struct {
		name   string
		policy HostPolicy
		srv    *server
		url    string
		class  Class
		reason Reason
	}{
		{"name resolving to loopback refused at dial", HostPolicy{AllowedHosts: []string{"localhost"}},
			tlsSrv, "https://localhost:" + port(tlsSrv) + "/e", DestinationFault, ReasonSSRFBlocked},
		{"IP literal refused before dial", HostPolicy{AllowedHosts: []string{"127.0.0.1"}},
			tlsSrv, "https://127.0.0.1:" + port(tlsSrv) + "/e", DestinationFault, ReasonSSRFBlocked},
		{"host off the allow-list refused per request", HostPolicy{},
			tlsSrv, "https://localhost:" + port(tlsSrv) + "/e", DestinationFault, ReasonSSRFBlocked},
		{"allow private: name goes through", HostPolicy{AllowedHosts: []string{"localhost"}, AllowPrivate: true},
			plain, "http://localhost:" + port(plain) + "/e", Delivered, ReasonOK},
		{"allow private: IP literal goes through", HostPolicy{AllowPrivate: true},
			plain, "http://127.0.0.1:" + port(plain) + "/e", Delivered, ReasonOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			beforeReq, beforeConn := tt.srv.requests.Load(), tt.srv.conns.Load()
			c := NewClient(Options{Timeout: 2 * time.Second, Policy: tt.policy})
			defer c.CloseIdleConnections()
			res := c.Send(context.Background(), Request{URL: tt.url, Token: testToken, Body: []byte(`{}`)})
			if res.Class != tt.class || res.Reason != tt.reason {
				t.Fatalf("result = %+v, want %v/%s", res, tt.class, tt.reason)
			}
			gotReq, gotConn := tt.srv.requests.Load()-beforeReq, tt.srv.conns.Load()-beforeConn
			if tt.class == Delivered {
				if gotReq != 1 {
					t.Errorf("server saw %d requests, want 1", gotReq)
				}
				return
			}
			if gotReq != 0 || gotConn != 0 {
				t.Errorf("server saw %d requests and %d connections, want none", gotReq, gotConn)
			}
			assertNoSecret(t, res)
		})
	}
}

func TestSendUntrustedCertificate(t *testing.T) {
	srv := newServer(t, true, func(w http.ResponseWriter, r *http.Request) {})
	res := privateClient(time.Second).Send(context.Background(), Request{URL: srv.URL, Token: testToken, Body: []byte(`{}`)})
	if res.Class != DestinationFault || res.Reason != ReasonTLSError || srv.requests.Load() != 0 {
		t.Fatalf("result = %+v, requests %d", res, srv.requests.Load())
	}
}

func TestSendRedactsTransportErrors(t *testing.T) {
	// A token that ends up in the URL (operators paste odd things) must not leak via the error.
	res := privateClient(time.Second).Send(context.Background(), Request{
		URL: "http://127.0.0.1:1/e?t=" + testToken, Token: testToken, Body: []byte(`{}`)})
	if res.Class != Retryable {
		t.Fatalf("result = %+v", res)
	}
	assertNoSecret(t, res)
	if !bytes.Contains([]byte(res.Excerpt), []byte("127.0.0.1:1")) {
		t.Logf("excerpt: %q", res.Excerpt)
	}
}
