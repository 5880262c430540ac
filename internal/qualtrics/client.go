package qualtrics

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

const (
	// DefaultTimeout bounds one attempt: connect, send, and read the response.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxIdleConnsPerHost is the keep-alive pool kept per destination host. Many
	// destinations share one Qualtrics data-center host (iad1.qualtrics.com, …) and each lane
	// sends from up to 16 workers, so a small pool would close and re-open (TLS) connections
	// on every burst: qbench saw 1,800 new connections/s to one host with a pool of 64.
	DefaultMaxIdleConnsPerHost = 512
	// MaxResponseBytes is the most of a response body Send keeps: enough to redact the token
	// and cut an ExcerptBytes excerpt from it. Qualtrics' answers are far smaller.
	MaxResponseBytes = 4 << 10
	// maxDrainBytes is how much more of a body Send reads and discards to keep the connection
	// reusable; beyond it (a 10 MB answer), closing the connection is cheaper.
	maxDrainBytes = 64 << 10
	// maxHeaderBytes bounds a response's status line and headers; net/http's default (10 MB)
	// would let a destination that sends headers forever cost megabytes per attempt.
	maxHeaderBytes = 64 << 10
	redacted       = "[REDACTED]"
)

// Request is one delivery attempt.
type Request struct {
	URL            string // opaque trigger URL; its query string is kept intact
	Username       string
	Token          string
	Body           []byte // the JSON payload
	IdempotencyKey string
}

// Result is a classified attempt and how long it took.
type Result struct {
	Outcome
	Latency time.Duration
}

// Options configure a Client. Zero values take the defaults.
type Options struct {
	Timeout             time.Duration // per attempt, default DefaultTimeout
	UserAgent           string        // "qgate/<version>"
	Policy              HostPolicy
	MaxIdleConnsPerHost int // default DefaultMaxIdleConnsPerHost
}

// Client POSTs JSON-event payloads. It is safe for concurrent use; make one per process so
// every destination shares the connection pool.
type Client struct {
	transport *http.Transport
	timeout   time.Duration
	userAgent string
	policy    HostPolicy
	now       func() time.Time
}

// NewClient returns a Client whose transport enforces opts.Policy on every dial, never follows
// redirects (Send uses the transport alone), never uses an environment proxy (a proxy would
// hide the real destination from the dial-time check), and keeps HTTP/1.1 connections alive for
// high request rates to one host.
func NewClient(opts Options) *Client {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxIdleConnsPerHost <= 0 {
		opts.MaxIdleConnsPerHost = DefaultMaxIdleConnsPerHost
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "qgate"
	}
	dialer := &net.Dialer{
		Timeout:   min(opts.Timeout, 5*time.Second),
		KeepAlive: 30 * time.Second,
		Control:   opts.Policy.dialControl,
	}
	protocols := new(http.Protocols)
	protocols.SetHTTP1(true)
	t := &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		Protocols:           protocols,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: min(opts.Timeout, 5*time.Second),
		MaxIdleConns:        0, // no global cap: the per-host cap governs
		MaxIdleConnsPerHost: opts.MaxIdleConnsPerHost,
		IdleConnTimeout:     90 * time.Second,
		// Throughput needs many connections per host; the dispatcher's rate limit and
		// concurrency bound them, not the transport.
		MaxConnsPerHost:        0,
		ExpectContinueTimeout:  0,
		MaxResponseHeaderBytes: maxHeaderBytes,
		WriteBufferSize:        16 << 10,
		ReadBufferSize:         16 << 10,
	}
	return &Client{
		transport: t,
		timeout:   opts.Timeout,
		userAgent: opts.UserAgent,
		policy:    opts.Policy,
		now:       time.Now,
	}
}

// CloseIdleConnections closes pooled connections; call it at shutdown.
func (c *Client) CloseIdleConnections() { c.transport.CloseIdleConnections() }

// Send POSTs req.Body with Content-Type: application/json, Authorization: Basic
// base64(username:token), User-Agent and Idempotency-Key (when set). It never follows
// redirects (a 3xx is classified, its Location shown in the excerpt), keeps at most
// MaxResponseBytes of the response body and discards at most maxDrainBytes more, and bounds the
// whole attempt — connecting, sending, the headers and the body — by the client's timeout, so a
// destination that drips its answer or sends headers forever ends as a timeout. It returns a
// classified Result; no string in it contains the token.
func (c *Client) Send(ctx context.Context, req Request) Result {
	start := time.Now()
	res := func(o Outcome) Result { return Result{Outcome: o, Latency: time.Since(start)} }
	red := newRedactor(req)

	if err := c.policy.CheckURL(req.URL); err != nil {
		return res(Classify(0, nil, nil, err, c.now()))
	}
	actx, cancel := context.WithTimeoutCause(ctx, c.timeout, errAttemptTimeout)
	defer cancel()

	hreq, err := http.NewRequestWithContext(actx, http.MethodPost, req.URL, bytes.NewReader(req.Body))
	if err != nil { // CheckURL already parsed it; unreachable in practice
		return res(Classify(0, nil, nil, fmt.Errorf("%w: %s", ErrURLNotAllowed, red.text(err.Error())), c.now()))
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("User-Agent", c.userAgent)
	hreq.SetBasicAuth(req.Username, req.Token)
	if req.IdempotencyKey != "" {
		// Also tells the transport the POST is safe to replay on a dead keep-alive connection.
		hreq.Header.Set("Idempotency-Key", req.IdempotencyKey)
	}

	// The transport itself, not an http.Client: a client parses a 3xx's Location before its
	// CheckRedirect could refuse to follow, and fails the attempt when it does not parse.
	resp, err := c.transport.RoundTrip(hreq)
	if err != nil {
		return res(Classify(0, nil, nil, red.err(attemptErr(actx, err)), c.now()))
	}
	body, rerr := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes))
	if rerr == nil {
		// Drain a little more so the connection goes back to the pool; closing a body that is
		// not at its end closes the connection instead.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrainBytes))
	}
	_ = resp.Body.Close()
	if loc := resp.Header.Get("Location"); loc != "" {
		resp.Header.Set("Location", red.text(loc))
	}
	// The status decides: a body cut short (the attempt timed out while it dripped) after a
	// 2xx is still delivered, after a 400 still a client error. The excerpt says it was cut.
	o := Classify(resp.StatusCode, resp.Header, red.bytes(body), nil, c.now())
	if rerr != nil {
		o.Excerpt = withNote(o.Excerpt, "[response body cut short: "+cutReason(actx, rerr)+"]")
	}
	return res(o)
}

// cutReason says in a few words why reading a response body failed.
func cutReason(ctx context.Context, err error) string {
	switch classifyErr(attemptErr(ctx, err)).Reason {
	case ReasonTimeout:
		return "attempt timed out"
	case ReasonCanceled:
		return "attempt canceled"
	}
	return "connection lost"
}

// attemptErr strips the request URL from a transport error (its query may carry an event
// identifier and it is noise in an excerpt) and makes the context's cause visible to Classify.
func attemptErr(ctx context.Context, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if ctx.Err() != nil {
		if cause := context.Cause(ctx); cause != nil && !errors.Is(err, cause) {
			err = fmt.Errorf("%w: %w", cause, err)
		}
	}
	return err
}

// redactor removes the token, in the forms a server might echo it, from returned text.
type redactor struct{ secrets []string }

func newRedactor(req Request) redactor {
	if req.Token == "" {
		return redactor{}
	}
	basic := base64.StdEncoding.EncodeToString([]byte(req.Username + ":" + req.Token))
	return redactor{secrets: []string{
		basic, // longest first: it cannot contain the raw token, but may overlap the escaped forms
		req.Token,
		url.QueryEscape(req.Token),
		base64.StdEncoding.EncodeToString([]byte(req.Token)),
	}}
}

func (r redactor) text(s string) string {
	for _, sec := range r.secrets {
		if sec != "" && strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	return s
}

func (r redactor) bytes(b []byte) []byte {
	for _, sec := range r.secrets {
		if sec != "" && bytes.Contains(b, []byte(sec)) {
			b = bytes.ReplaceAll(b, []byte(sec), []byte(redacted))
		}
	}
	return b
}

func (r redactor) err(err error) error {
	msg := err.Error()
	if red := r.text(msg); red != msg {
		return &redactedError{err: err, msg: red}
	}
	return err
}

// redactedError keeps errors.Is/As working while hiding the token from Error().
type redactedError struct {
	err error
	msg string
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }
