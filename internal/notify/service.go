package notify

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

// Service carries out the operator's changes to channels.
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

func (s *Service) seal(c *Channel, secret string) error {
	sealed, err := s.Box.Seal(c.ID, secret)
	if err != nil {
		return err
	}
	c.Sealed = sealed
	c.SecretEnd = secret[max(len(secret)-4, 0):]
	return nil
}

// Create validates r and stores a new channel.
func (s *Service) Create(ctx context.Context, r ChannelRequest) (Channel, error) {
	if r.Version != nil {
		return Channel{}, fault.New(fault.Invalid, "version", "unknown_field", "version is set by qgate; give it only on PATCH")
	}
	if problems := r.Validate(s.Policy, nil); len(problems) > 0 {
		return Channel{}, fault.Of(fault.Invalid, problems...)
	}
	c := r.Apply(Channel{Kind: KindWebhook})
	if c.ConnectionIDs == nil {
		c.ConnectionIDs = []string{}
	}
	u, err := uuid.NewV7()
	if err != nil {
		return Channel{}, err
	}
	c.ID = "nch_" + u.String()
	if r.Secret != nil {
		if err := s.seal(&c, *r.Secret); err != nil {
			return Channel{}, err
		}
	}
	c.Version, c.CreatedAt = 1, s.now()
	c.UpdatedAt = c.CreatedAt
	if err := s.Store.CreateChannel(ctx, c); err != nil {
		return Channel{}, err
	}
	return c, nil
}

// Get returns a live channel.
func (s *Service) Get(ctx context.Context, id string) (Channel, error) {
	return s.Store.GetChannel(ctx, id)
}

// List returns every live channel.
func (s *Service) List(ctx context.Context) ([]Channel, error) { return s.Store.ListChannels(ctx) }

// Update applies a partial change (a new secret rotates it).
func (s *Service) Update(ctx context.Context, id string, r ChannelRequest, expect *int64) (Channel, error) {
	cur, err := s.Store.GetChannel(ctx, id)
	if err != nil {
		return Channel{}, err
	}
	if expect == nil {
		expect = r.Version
	}
	if expect != nil && *expect != cur.Version {
		return Channel{}, ErrVersionConflict
	}
	if problems := r.Validate(s.Policy, &cur); len(problems) > 0 {
		return Channel{}, fault.Of(fault.Invalid, problems...)
	}
	next := r.Apply(cur)
	if r.Secret != nil {
		if err := s.seal(&next, *r.Secret); err != nil {
			return Channel{}, err
		}
	}
	next.Version, next.UpdatedAt = cur.Version+1, s.now()
	if err := s.Store.UpdateChannel(ctx, next, cur.Version); err != nil {
		return Channel{}, err
	}
	return next, nil
}

// Delete soft-deletes a channel; its pending deliveries are dead-lettered at their next attempt.
func (s *Service) Delete(ctx context.Context, id string) error {
	return s.Store.DeleteChannel(ctx, id, s.now())
}
