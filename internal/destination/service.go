package destination

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/google/uuid"

	"github.com/qgate/qgate/internal/fault"
	"github.com/qgate/qgate/internal/qualtrics"
)

// Service carries out the operator's changes: validation, token sealing, optimistic
// versioning, and a registry refresh after each change so it takes effect on this node at once.
type Service struct {
	Store    Store
	Box      *Box
	Policy   qualtrics.HostPolicy
	Tester   Tester    // nil: test answers 503
	Registry *Registry // nil: nothing to refresh
	Now      func() time.Time
}

// NewID returns a destination ID: "dst_" and a UUIDv7, so ID order is creation order.
func NewID() (string, error) {
	u, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("new destination id: %w", err)
	}
	return "dst_" + u.String(), nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Millisecond)
	}
	return time.Now().UTC().Truncate(time.Millisecond)
}

func (s *Service) changed(ctx context.Context) {
	if s.Registry != nil {
		// A failed refresh is caught up by the registry's next Run tick, which logs it.
		_ = s.Registry.Refresh(context.WithoutCancel(ctx))
	}
}

// Create validates r and stores a new destination.
func (s *Service) Create(ctx context.Context, r Request) (Destination, error) {
	if r.Version != nil {
		return Destination{}, fault.New(fault.Invalid, "version", "unknown_field", "version is set by qgate; give it only on PATCH")
	}
	if problems := r.Validate(s.Policy, nil); len(problems) > 0 {
		return Destination{}, fault.Of(fault.Invalid, problems...)
	}
	d := r.Apply(Defaults())
	id, err := NewID()
	if err != nil {
		return Destination{}, err
	}
	d.ID = id
	if err := s.seal(&d, *r.APIToken); err != nil {
		return Destination{}, err
	}
	d.Version = 1
	d.CreatedAt = s.now()
	d.UpdatedAt = d.CreatedAt
	if err := s.Store.CreateDestination(ctx, d); err != nil {
		return Destination{}, err
	}
	s.changed(ctx)
	return d, nil
}

func (s *Service) seal(d *Destination, token string) error {
	sealed, err := s.Box.Seal(d.ID, token)
	if err != nil {
		return err
	}
	d.SealedToken = sealed
	d.TokenLast4 = last4(token)
	return nil
}

// last4 returns the token's last four characters (runes).
func last4(tok string) string {
	r := []rune(tok)
	if len(r) <= 4 {
		return string(r)
	}
	return string(r[len(r)-4:])
}

// Get returns a non-deleted destination.
func (s *Service) Get(ctx context.Context, id string) (Destination, error) {
	return s.Store.GetDestination(ctx, id, false)
}

// List returns up to limit destinations after the cursor and whether more follow.
func (s *Service) List(ctx context.Context, afterID string, limit int) ([]Destination, bool, error) {
	ds, err := s.Store.ListDestinations(ctx, afterID, limit+1)
	if err != nil {
		return nil, false, err
	}
	if len(ds) > limit {
		return ds[:limit], true, nil
	}
	return ds, false, nil
}

// Update applies a partial change. expectVersion (from If-Match or the body's version; nil:
// none) must match the current version. A change that changes nothing answers the destination
// as it is, without a new version.
func (s *Service) Update(ctx context.Context, id string, r Request, expectVersion *int64) (Destination, error) {
	cur, err := s.Store.GetDestination(ctx, id, false)
	if err != nil {
		return Destination{}, err
	}
	if expectVersion != nil && *expectVersion != cur.Version {
		return Destination{}, ErrVersionConflict
	}
	if problems := r.Validate(s.Policy, &cur); len(problems) > 0 {
		return Destination{}, fault.Of(fault.Invalid, problems...)
	}
	next := r.Apply(cur)
	if r.APIToken == nil && sameConfig(cur, next) {
		return cur, nil
	}
	if r.APIToken != nil {
		if err := s.seal(&next, *r.APIToken); err != nil {
			return Destination{}, err
		}
	}
	return s.write(ctx, cur, next)
}

func (s *Service) write(ctx context.Context, cur, next Destination) (Destination, error) {
	next.Version = cur.Version + 1
	next.UpdatedAt = s.now()
	if !next.UpdatedAt.After(cur.UpdatedAt) {
		next.UpdatedAt = cur.UpdatedAt.Add(time.Millisecond) // keep updated_at moving for the registry
	}
	if err := s.Store.UpdateDestination(ctx, next, cur.Version); err != nil {
		return Destination{}, err
	}
	s.changed(ctx)
	return next, nil
}

func sameConfig(a, b Destination) bool {
	a.Token, b.Token = "", ""
	return reflect.DeepEqual(a, b)
}

// SetPaused pauses or resumes; doing it twice is not a change (no new version).
func (s *Service) SetPaused(ctx context.Context, id string, paused bool) (Destination, error) {
	for range 5 { // a concurrent change moves the version on: read again and retry
		cur, err := s.Store.GetDestination(ctx, id, false)
		if err != nil {
			return Destination{}, err
		}
		if cur.Paused == paused {
			return cur, nil
		}
		next := cur
		next.Paused = paused
		d, err := s.write(ctx, cur, next)
		if errors.Is(err, ErrVersionConflict) {
			continue
		}
		return d, err
	}
	return Destination{}, ErrVersionConflict
}

// Delete soft-deletes a destination; its name becomes free.
func (s *Service) Delete(ctx context.Context, id string) error {
	if err := s.Store.DeleteDestination(ctx, id, s.now()); err != nil {
		return err
	}
	s.changed(ctx)
	return nil
}

// TestTimeout bounds one test call.
const TestTimeout = 30 * time.Second

var errNoTester = fault.New(fault.Unavailable, "", "test_unavailable", "this node cannot send test events")

// Test sends a test event through the Tester with the destination's token decrypted.
func (s *Service) Test(ctx context.Context, id string, profile json.RawMessage) (TestResult, error) {
	d, err := s.Store.GetDestination(ctx, id, false)
	if err != nil {
		return TestResult{}, err
	}
	if s.Tester == nil {
		return TestResult{}, errNoTester
	}
	if d.Token, err = s.Box.Open(d.ID, d.SealedToken); err != nil {
		return TestResult{}, fmt.Errorf("test %s: %w", d.ID, err)
	}
	ctx, cancel := context.WithTimeoutCause(ctx, TestTimeout, errors.New("destination test timed out"))
	defer cancel()
	return s.Tester.Test(ctx, d, profile)
}
