package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/qgate/qgate/internal/notify"
	"github.com/qgate/qgate/internal/qualtrics"
)

// Opener decrypts a sealed secret (destination.Box).
type Opener interface {
	Open(id string, sealed []byte) (string, error)
}

// Sender delivers fired alerts to their subscription's webhook: it leases due alerts from the
// store, POSTs each signed per Standard Webhooks (webhook-id is the alert ID, the same on every
// attempt, for the receiver's dedupe), and records the outcome with notify's verdicts: 2xx
// delivered; 408, 425, 429, 5xx and transport errors retried with backoff (honouring
// Retry-After) within Window; any other answer, a deleted subscription or a passed window
// dead-letters the alert.
type Sender struct {
	Store     Store
	Box       Opener
	HTTP      *http.Client
	Node      string
	UserAgent string
	Backoff   notify.Backoff
	Window    time.Duration // default 24 h
	Tick      time.Duration // default 1 s
	Lease     time.Duration // default 1 min
	Now       func() time.Time
	OnError   func(error)

	wake chan struct{}
}

// Init prepares the wake channel; call before Run and before handing out Wake.
func (s *Sender) Init() { s.wake = make(chan struct{}, 1) }

// Wake makes the sender look for due alerts now.
func (s *Sender) Wake() {
	if s.wake == nil {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

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
		for ctx.Err() == nil && s.Pass(ctx) > 0 {
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.wake:
		}
	}
}

// Pass sends one batch of due alerts and returns how many it attempted.
func (s *Sender) Pass(ctx context.Context) int {
	lease := s.Lease
	if lease <= 0 {
		lease = time.Minute
	}
	due, err := s.Store.ClaimDueAlerts(ctx, s.Node, s.now(), lease, 20)
	if err != nil {
		s.fail(err)
		return 0
	}
	for _, a := range due {
		if ctx.Err() != nil {
			return 0
		}
		if err := s.Store.RecordAlertAttempt(context.WithoutCancel(ctx), s.attempt(ctx, a)); err != nil {
			s.fail(err)
		}
	}
	return len(due)
}

func (s *Sender) fail(err error) {
	if s.OnError != nil {
		s.OnError(err)
	}
}

var errPermanent = errors.New("permanent")

func (s *Sender) attempt(ctx context.Context, al Alert) Attempt {
	now := s.now()
	a := Attempt{AlertID: al.ID, N: al.Attempts + 1, At: now}
	status, h, err := s.send(ctx, al, now)
	a.StatusCode = status
	if err != nil {
		a.Error = err.Error()
	}
	v, wait := notify.Check(status, h)
	if errors.Is(err, errPermanent) {
		v = notify.Permanent
	}
	switch v {
	case notify.Delivered:
		a.Status = StatusDelivered
		return a
	case notify.Permanent:
		a.Status = StatusDeadLettered
		return a
	}
	window := s.Window
	if window <= 0 {
		window = 24 * time.Hour
	}
	first := now
	if al.FirstAttemptAt != nil {
		first = *al.FirstAttemptAt
	}
	next := now.Add(max(s.Backoff.NextDuration(a.N), wait))
	if next.After(first.Add(window)) {
		a.Status = StatusDeadLettered
		if a.Error == "" {
			a.Error = "retry window passed"
		}
		return a
	}
	a.Status, a.NextAt = StatusRetrying, &next
	return a
}

// Body is the JSON an alert webhook receives.
type Body struct {
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

// body renders an alert's webhook body: the same bytes on every attempt.
func body(a Alert) ([]byte, error) {
	return json.Marshal(Body{Type: a.Event, Timestamp: a.FiredAt.UTC(), Data: a.Data})
}

func (s *Sender) send(ctx context.Context, al Alert, now time.Time) (int, http.Header, error) {
	sub, err := s.Store.GetAlertSubscription(ctx, al.SubscriptionID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return 0, nil, fmt.Errorf("%w: subscription deleted", errPermanent)
		}
		return 0, nil, err
	}
	b, err := body(al)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errPermanent, err)
	}
	secret, err := s.Box.Open(sub.ID, sub.Sealed)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: the subscription's secret cannot be opened", errPermanent)
	}
	key, err := notify.DecodeSecret(secret)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errPermanent, err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, 15*time.Second, errors.New("alert attempt timed out"))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.URL, bytes.NewReader(b))
	if err != nil {
		return 0, nil, fmt.Errorf("%w: %v", errPermanent, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if s.UserAgent != "" {
		req.Header.Set("User-Agent", s.UserAgent)
	}
	req.Header.Set("webhook-id", al.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", notify.Sign(key, al.ID, now, b))
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
