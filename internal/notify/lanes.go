package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/qualtrics"
)

// DefaultRatePerMinute is how fast one channel's lane sends (Slack's incoming webhooks take
// about one message a second with bursts; a webhook receiver rarely needs more).
const DefaultRatePerMinute = 600

// Opener decrypts a sealed secret (destination.Box).
type Opener interface {
	Open(id string, sealed []byte) (string, error)
}

// Lanes is what the delivery engine's channel lanes send through (dispatch.Channels): the
// channel as a lane target, and one attempt — the payload rendered at publish time, signed now
// with the channel's sealed secret, Idempotency-Key and webhook-id the notification's ID.
type Lanes struct {
	Store     Store
	Box       Opener
	HTTP      *http.Client // NewHTTPClient: the dial-time SSRF guard
	Policy    qualtrics.HostPolicy
	UserAgent string
	Rate      int // per minute, default DefaultRatePerMinute
	Now       func() time.Time

	mu   sync.Mutex
	seen map[string]Channel // the channel as last read for a lane, for the attempt that follows
}

// Channel returns channel id as a lane target.
func (l *Lanes) Channel(ctx context.Context, id string) (destination.Destination, bool, error) {
	c, err := l.Store.GetChannel(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return destination.Destination{}, false, nil
	}
	if err != nil {
		return destination.Destination{}, false, err
	}
	l.mu.Lock()
	if l.seen == nil {
		l.seen = map[string]Channel{}
	}
	l.seen[id] = c
	l.mu.Unlock()
	rate := l.Rate
	if rate <= 0 {
		rate = DefaultRatePerMinute
	}
	return destination.Destination{ID: c.ID, Name: c.Name, URL: c.URL, RateLimitPerMinute: rate, Enabled: true,
		Version: c.Version, CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}, true, nil
}

// Send makes one attempt at delivering job (job.UpdateID is the notification ID) to ch.
func (l *Lanes) Send(ctx context.Context, ch destination.Destination, job delivery.Job) qualtrics.Result {
	now := time.Now().UTC()
	if l.Now != nil {
		now = l.Now().UTC()
	}
	l.mu.Lock()
	c, ok := l.seen[ch.ID]
	l.mu.Unlock()
	if !ok {
		var err error
		if c, err = l.Store.GetChannel(ctx, ch.ID); err != nil {
			return qualtrics.Result{Outcome: qualtrics.Classify(0, nil, nil, fmt.Errorf("read channel: %w", err), now)}
		}
	}
	if err := CheckURL(l.Policy, c.URL); err != nil {
		return qualtrics.Result{Outcome: qualtrics.Classify(0, nil, nil, err, now)}
	}
	r := Request{URL: c.URL, ID: job.UpdateID, IdempotencyKey: job.UpdateID, Body: job.Payload, UserAgent: l.UserAgent, Now: now}
	if c.Kind == KindWebhook || len(c.Sealed) > 0 {
		key, err := l.key(c)
		if err != nil {
			// The receiver cannot verify what it would get: a fault of the channel's
			// configuration (the circuit opens, nothing is dropped, a PATCH with a new
			// secret fixes it).
			return qualtrics.Result{Outcome: qualtrics.Outcome{Class: qualtrics.DestinationFault, Reason: ReasonSecret, Excerpt: err.Error()}}
		}
		r.Key = key
	}
	return Post(ctx, l.HTTP, r)
}

// ReasonSecret is the attempt reason when a channel's secret cannot be opened or decoded.
const ReasonSecret qualtrics.Reason = "secret_unusable"

func (l *Lanes) key(c Channel) ([]byte, error) {
	secret, err := l.Box.Open(c.ID, c.Sealed)
	if err != nil {
		return nil, errors.New("the channel's secret cannot be opened")
	}
	return DecodeSecret(secret)
}
