package notify

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/qgate/qgate/internal/qualtrics"
)

// Opener decrypts a sealed secret (destination.Box).
type Opener interface {
	Open(id string, sealed []byte) (string, error)
}

// Sender delivers recorded notifications: it leases due deliveries from the store, sends
// each once per lease, and records every attempt and the delivery's next state (delivered,
// retrying at a backoff, or dead-lettered when the answer is permanent or the retry window
// has passed). Several nodes may run one: a lease keeps a delivery on one node at a time.
// Receivers dedupe on webhook-id, the same for every attempt.
type Sender struct {
	Store     Store
	Box       Opener
	HTTP      *http.Client
	Node      string
	UserAgent string
	Backoff   Backoff
	Window    time.Duration // retry window from the first attempt, default 24 h
	Tick      time.Duration // default 1 s
	Lease     time.Duration // default 1 min
	Now       func() time.Time
	OnError   func(error)
	// Breaker holds failing channels back (nil: every due delivery is attempted).
	Breaker *Breaker

	wake chan struct{}
}

// NewHTTPClient returns the HTTP client for channels: the policy's dial-time SSRF guard, no
// proxy, no redirects, a 10-second timeout.
func NewHTTPClient(policy qualtrics.HostPolicy) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, Control: policy.DialControl}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{Proxy: nil, DialContext: d.DialContext, TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout: 5 * time.Second, MaxIdleConnsPerHost: 4, IdleConnTimeout: 90 * time.Second},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Wake makes the sender look for due deliveries now.
func (s *Sender) Wake() {
	if s.wake == nil {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// Init prepares the wake channel; call before Run and before handing out Wake.
func (s *Sender) Init() { s.wake = make(chan struct{}, 1) }

func (s *Sender) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

// Run sends until ctx ends.
func (s *Sender) Run(ctx context.Context) {
	if s.wake == nil {
		s.Init()
	}
	tick := s.Tick
	if tick <= 0 {
		tick = time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		// Drain what is due (a full batch may hide more), then wait for the tick or a wake.
		for ctx.Err() == nil && s.Pass(ctx) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// Pass sends one batch of due deliveries and returns how many it attempted.
func (s *Sender) Pass(ctx context.Context) int {
	lease := s.Lease
	if lease <= 0 {
		lease = time.Minute
	}
	ds, err := s.Store.ClaimDueNotifications(ctx, s.Node, s.now(), lease, 20)
	if err != nil {
		s.fail(err)
		return 0
	}
	attempted := 0
	for _, d := range ds {
		if ctx.Err() != nil {
			break
		}
		if s.Breaker != nil {
			if ok, until := s.Breaker.Allow(d.ChannelID, s.now()); !ok {
				// Not an attempt: it waits, out of RAM, until the channel may be tried again.
				if err := s.Store.DeferNotification(context.WithoutCancel(ctx), d.ID, until); err != nil {
					s.fail(err)
				}
				continue
			}
		}
		a, v := s.attempt(ctx, d)
		attempted++
		if s.Breaker != nil {
			s.Breaker.Record(d.ChannelID, v, s.now())
		}
		if err := s.Store.RecordNotificationAttempt(context.WithoutCancel(ctx), a); err != nil {
			s.fail(err)
		}
	}
	return attempted
}

func (s *Sender) fail(err error) {
	if s.OnError != nil {
		s.OnError(err)
	}
}

// attempt sends d once and returns the attempt with the delivery's next state, and what the
// channel's answer meant.
func (s *Sender) attempt(ctx context.Context, d Delivery) (Attempt, Verdict) {
	now := s.now()
	a := Attempt{DeliveryID: d.ID, N: d.Attempts + 1, At: now}
	status, h, err := s.send(ctx, d, now)
	a.Latency = s.now().Sub(now)
	a.StatusCode = status
	if err != nil {
		a.Error = err.Error()
	}
	v, wait := Check(status, h)
	if errors.Is(err, errPermanent) {
		v = Permanent
	}
	switch v {
	case Delivered:
		a.Status = StatusDelivered
		return a, v
	case Permanent:
		a.Status = StatusDeadLettered
		return a, v
	}
	window := s.Window
	if window <= 0 {
		window = 24 * time.Hour
	}
	first := now
	if d.FirstAttemptAt != nil {
		first = *d.FirstAttemptAt
	}
	next := now.Add(max(s.Backoff.NextDuration(a.N), wait))
	if next.After(first.Add(window)) {
		a.Status = StatusDeadLettered
		if a.Error == "" {
			a.Error = "retry window passed"
		}
		return a, v
	}
	a.Status, a.NextAt = StatusRetrying, &next
	return a, v
}

var errPermanent = errors.New("permanent")

// send POSTs d to its channel and returns the status (0 for a transport error).
func (s *Sender) send(ctx context.Context, d Delivery, now time.Time) (int, http.Header, error) {
	c, err := s.Store.GetChannel(ctx, d.ChannelID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return 0, nil, fmt.Errorf("%w: channel deleted", errPermanent)
		}
		return 0, nil, err
	}
	b, err := body(c.Kind, d)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errPermanent, err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, 15*time.Second, errors.New("notification attempt timed out"))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(b))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", d.NotificationID)
	if s.UserAgent != "" {
		req.Header.Set("User-Agent", s.UserAgent)
	}
	if c.Kind == KindWebhook || len(c.Sealed) > 0 {
		secret, err := s.Box.Open(c.ID, c.Sealed)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: the channel's secret cannot be opened", errPermanent)
		}
		key, err := DecodeSecret(secret)
		if err != nil {
			return 0, nil, fmt.Errorf("%w: %v", errPermanent, err)
		}
		req.Header.Set("webhook-id", d.NotificationID)
		req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
		req.Header.Set("webhook-signature", Sign(key, d.NotificationID, now, b))
	}
	resp, err := s.HTTP.Do(req)
	if err != nil {
		if errors.Is(err, qualtrics.ErrURLNotAllowed) {
			return 0, nil, fmt.Errorf("%w: %v", errPermanent, err)
		}
		return 0, nil, fmt.Errorf("send: %w", unwrapURL(err))
	}
	defer resp.Body.Close()
	excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 {
		return resp.StatusCode, resp.Header, fmt.Errorf("answered %d: %s", resp.StatusCode, bytes.TrimSpace(excerpt))
	}
	return resp.StatusCode, resp.Header, nil
}

func unwrapURL(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}
