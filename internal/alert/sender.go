package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/qgate/qgate/internal/dispatch"
	"github.com/qgate/qgate/internal/notify"
	"github.com/qgate/qgate/internal/qualtrics"
)

// Opener decrypts a sealed secret (destination.Box).
type Opener interface {
	Open(id string, sealed []byte) (string, error)
}

// Sender delivers fired alerts to their subscription's webhook: it leases due alerts from the
// store, POSTs each signed per Standard Webhooks (webhook-id is the alert ID, the same on every
// attempt, for the receiver's dedupe) through notify.Post, and records the outcome as
// qualtrics.Classify decides it: 2xx delivered; 408, 425, 429, 5xx and transport errors
// retried with backoff (honouring Retry-After) within Window; any other answer, a deleted
// subscription or a passed window dead-letters the alert.
type Sender struct {
	Store     Store
	Box       Opener
	HTTP      *http.Client
	Node      string
	UserAgent string
	Backoff   dispatch.Backoff
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

// attempt sends al once and returns the attempt with the alert's next state. The answer is
// classified by qualtrics.Classify (through notify.Post), as every delivery's: delivered;
// retried with the engine's backoff (dispatch.Backoff, Retry-After honoured) until the window
// has passed; dead-lettered at once when permanent or a fault of the receiver (401/403, a URL
// the SSRF guard refuses: alerts have no circuit to hold them).
func (s *Sender) attempt(ctx context.Context, al Alert) Attempt {
	now := s.now()
	a := Attempt{AlertID: al.ID, N: al.Attempts + 1, At: now}
	res, err := s.send(ctx, al, now)
	if err != nil {
		a.Error = err.Error()
		if errors.Is(err, errPermanent) {
			a.Status = StatusDeadLettered
			return a
		}
		res.Class = qualtrics.Retryable
	} else {
		a.StatusCode = res.Status
		if res.Class != qualtrics.Delivered {
			a.Error = describe(res)
		}
	}
	switch res.Class {
	case qualtrics.Delivered:
		a.Status = StatusDelivered
		return a
	case qualtrics.Permanent, qualtrics.DestinationFault:
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
	next := now.Add(s.Backoff.Next(a.N, res.RetryAfter))
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

// describe is the attempt's error as stored: the status and the answer's excerpt, or the
// transport error.
func describe(r qualtrics.Result) string {
	if r.Status == 0 {
		return string(r.Reason) + ": " + r.Excerpt
	}
	return strings.TrimSpace(fmt.Sprintf("answered %d: %s", r.Status, r.Excerpt))
}

var errPermanent = errors.New("permanent")

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

// send POSTs al, signed with its subscription's secret, through notify.Post (the one signed
// POST of qgate's webhooks). An error means no attempt was made.
func (s *Sender) send(ctx context.Context, al Alert, now time.Time) (qualtrics.Result, error) {
	sub, err := s.Store.GetAlertSubscription(ctx, al.SubscriptionID)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return qualtrics.Result{}, fmt.Errorf("%w: subscription deleted", errPermanent)
		}
		return qualtrics.Result{}, err
	}
	b, err := body(al)
	if err != nil {
		return qualtrics.Result{}, fmt.Errorf("%w: %v", errPermanent, err)
	}
	secret, err := s.Box.Open(sub.ID, sub.Sealed)
	if err != nil {
		return qualtrics.Result{}, fmt.Errorf("%w: the subscription's secret cannot be opened", errPermanent)
	}
	key, err := notify.DecodeSecret(secret)
	if err != nil {
		return qualtrics.Result{}, fmt.Errorf("%w: %v", errPermanent, err)
	}
	return notify.Post(ctx, s.HTTP, notify.Request{URL: sub.URL, ID: al.ID, Key: key, Body: b, UserAgent: s.UserAgent, Now: now}), nil
}
