package alert

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/qgate/qgate/internal/fault"
	"github.com/qgate/qgate/internal/qualtrics"
)

// Sealer seals and opens secrets (destination.Box).
type Sealer interface {
	Seal(id, plaintext string) ([]byte, error)
	Open(id string, sealed []byte) (string, error)
}

// Service carries out the operator's changes to subscriptions.
type Service struct {
	Store  Store
	Box    Sealer
	Policy qualtrics.HostPolicy
	Now    func() time.Time
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Millisecond)
	}
	return time.Now().UTC().Truncate(time.Millisecond)
}

func (s *Service) seal(sub *Subscription, secret string) error {
	sealed, err := s.Box.Seal(sub.ID, secret)
	if err != nil {
		return err
	}
	sub.Sealed, sub.SecretEnd = sealed, secret[max(len(secret)-4, 0):]
	return nil
}

// Create validates r and stores a new subscription.
func (s *Service) Create(ctx context.Context, r Request) (Subscription, error) {
	if r.Version != nil {
		return Subscription{}, fault.New(fault.Invalid, "version", "unknown_field", "version is set by qgate; give it only on PATCH")
	}
	if problems := r.Validate(s.Policy, nil); len(problems) > 0 {
		return Subscription{}, fault.Of(fault.Invalid, problems...)
	}
	sub := r.Apply(Subscription{Enabled: true})
	sub.ID = "asub_" + uuid.Must(uuid.NewV7()).String()
	if err := s.seal(&sub, *r.Secret); err != nil {
		return Subscription{}, err
	}
	sub.Version, sub.CreatedAt = 1, s.now()
	sub.UpdatedAt = sub.CreatedAt
	if err := s.Store.CreateAlertSubscription(ctx, sub); err != nil {
		return Subscription{}, err
	}
	return sub, nil
}

// Get returns a subscription.
func (s *Service) Get(ctx context.Context, id string) (Subscription, error) {
	return s.Store.GetAlertSubscription(ctx, id)
}

// List returns every subscription.
func (s *Service) List(ctx context.Context) ([]Subscription, error) {
	return s.Store.ListAlertSubscriptions(ctx)
}

// Update applies a partial change (a new secret rotates it).
func (s *Service) Update(ctx context.Context, id string, r Request, expect *int64) (Subscription, error) {
	cur, err := s.Store.GetAlertSubscription(ctx, id)
	if err != nil {
		return Subscription{}, err
	}
	if expect == nil {
		expect = r.Version
	}
	if expect != nil && *expect != cur.Version {
		return Subscription{}, ErrVersionConflict
	}
	if problems := r.Validate(s.Policy, &cur); len(problems) > 0 {
		return Subscription{}, fault.Of(fault.Invalid, problems...)
	}
	next := r.Apply(cur)
	if r.Secret != nil {
		if err := s.seal(&next, *r.Secret); err != nil {
			return Subscription{}, err
		}
	}
	next.Version, next.UpdatedAt = cur.Version+1, s.now()
	if err := s.Store.UpdateAlertSubscription(ctx, next, cur.Version); err != nil {
		return Subscription{}, err
	}
	return next, nil
}

// Delete deletes a subscription; its undelivered alerts dead-letter at their next attempt.
func (s *Service) Delete(ctx context.Context, id string) error {
	return s.Store.DeleteAlertSubscription(ctx, id, s.now())
}
