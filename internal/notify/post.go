package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/qgate/qgate/internal/qualtrics"
)

// NewHTTPClient returns the HTTP client for channels and alert subscriptions: the policy's
// dial-time SSRF guard, no proxy, no redirects, a 10-second timeout.
func NewHTTPClient(policy qualtrics.HostPolicy) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: policy.DialControl}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{Proxy: nil, DialContext: d.DialContext, TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 5 * time.Second, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Request is one signed POST of a JSON body to a receiver of qgate's webhooks: a notification
// channel or an alert subscription.
type Request struct {
	URL string
	// ID is the webhook-id (the message's stable ID); IdempotencyKey, when set, is sent as
	// Idempotency-Key.
	ID             string
	IdempotencyKey string
	// Key is the decoded secret; nil sends the body unsigned (Slack and Teams without one).
	Key       []byte
	Body      []byte
	UserAgent string
	Now       time.Time // the webhook-timestamp
}

// errAttemptTimeout is the cause of an attempt cut by its timeout.
var errAttemptTimeout = errors.New("attempt timed out")

// Post sends r once, signed per Standard Webhooks (webhook-id, webhook-timestamp,
// webhook-signature) when r.Key is set, and classifies the answer with qualtrics.Classify,
// the one place that decides delivered, retry, receiver fault or give up. The whole attempt
// is bounded by 15 s.
func Post(ctx context.Context, hc *http.Client, r Request) qualtrics.Result {
	start := time.Now()
	res := func(o qualtrics.Outcome) qualtrics.Result {
		return qualtrics.Result{Outcome: o, Latency: time.Since(start)}
	}
	ctx, cancel := context.WithTimeoutCause(ctx, 15*time.Second, errAttemptTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.URL, bytes.NewReader(r.Body))
	if err != nil {
		return res(qualtrics.Classify(0, nil, nil, errors.Join(qualtrics.ErrURLNotAllowed, err), r.Now))
	}
	req.Header.Set("Content-Type", "application/json")
	if r.UserAgent != "" {
		req.Header.Set("User-Agent", r.UserAgent)
	}
	if r.IdempotencyKey != "" {
		req.Header.Set("Idempotency-Key", r.IdempotencyKey)
	}
	if r.Key != nil {
		req.Header.Set("webhook-id", r.ID)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(r.Now.Unix(), 10))
		req.Header.Set("webhook-signature", Sign(r.Key, r.ID, r.Now, r.Body))
	}
	resp, err := hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is noise in an excerpt
		}
		if ctx.Err() != nil {
			err = errors.Join(context.Cause(ctx), err)
		}
		return res(qualtrics.Classify(0, nil, nil, err, time.Now()))
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return res(qualtrics.Classify(resp.StatusCode, resp.Header, body, nil, time.Now()))
}
