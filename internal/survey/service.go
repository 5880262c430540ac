package survey

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/qgate/qgate/internal/fault"
	"github.com/qgate/qgate/internal/qualtrics"
)

// Sealer seals and opens tokens (destination.Box).
type Sealer interface {
	Seal(id, plaintext string) ([]byte, error)
	Open(id string, sealed []byte) (string, error)
}

// Service carries out the operator's changes to survey connections.
type Service struct {
	Store  Store
	Box    Sealer
	Policy qualtrics.HostPolicy
	Client *Client
	Now    func() time.Time
	// Wake is called after a sync request (the local scheduler looks at once).
	Wake func()
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Millisecond)
	}
	return time.Now().UTC().Truncate(time.Millisecond)
}

// Create validates r and stores a new connection.
func (s *Service) Create(ctx context.Context, r ConnectionRequest) (Connection, error) {
	if r.Version != nil {
		return Connection{}, fault.New(fault.Invalid, "version", "unknown_field", "version is set by qgate; give it only on PATCH")
	}
	if problems := r.Validate(s.Policy, nil); len(problems) > 0 {
		return Connection{}, fault.Of(fault.Invalid, problems...)
	}
	c := r.Apply(connectionDefaults())
	u, err := uuid.NewV7()
	if err != nil {
		return Connection{}, err
	}
	c.ID = "svc_" + u.String()
	if err := s.seal(&c, *r.APIToken); err != nil {
		return Connection{}, err
	}
	if err := s.sealEventsKey(&c, r.EventsKey); err != nil {
		return Connection{}, err
	}
	c.Version = 1
	c.CreatedAt = s.now()
	c.UpdatedAt = c.CreatedAt
	if err := s.Store.CreateSurveyConnection(ctx, c); err != nil {
		return Connection{}, err
	}
	return c, nil
}

func (s *Service) seal(c *Connection, token string) error {
	sealed, err := s.Box.Seal(c.ID, token)
	if err != nil {
		return err
	}
	c.Sealed = sealed
	r := []rune(token)
	c.TokenEnd = string(r[max(len(r)-4, 0):])
	return nil
}

// eventsKeyAAD binds a sealed events key to its connection, apart from the token.
func eventsKeyAAD(id string) string { return id + "/events" }

func (s *Service) sealEventsKey(c *Connection, key *string) error {
	switch {
	case key == nil:
		return nil
	case *key == "":
		c.EventsKeySealed, c.EventsKeySet = nil, false
		return nil
	}
	sealed, err := s.Box.Seal(eventsKeyAAD(c.ID), *key)
	if err != nil {
		return err
	}
	c.EventsKeySealed, c.EventsKeySet = sealed, true
	return nil
}

// Get returns a live connection with its last sync.
func (s *Service) Get(ctx context.Context, id string) (Connection, error) {
	return s.Store.GetSurveyConnection(ctx, id)
}

// List returns every live connection.
func (s *Service) List(ctx context.Context) ([]Connection, error) {
	return s.Store.ListSurveyConnections(ctx)
}

// Update applies a partial change; expectVersion (nil: none) must match. A new apiToken
// rotates the token.
func (s *Service) Update(ctx context.Context, id string, r ConnectionRequest, expectVersion *int64) (Connection, error) {
	cur, err := s.Store.GetSurveyConnection(ctx, id)
	if err != nil {
		return Connection{}, err
	}
	if expectVersion == nil {
		expectVersion = r.Version
	}
	if expectVersion != nil && *expectVersion != cur.Version {
		return Connection{}, ErrVersionConflict
	}
	if problems := r.Validate(s.Policy, &cur); len(problems) > 0 {
		return Connection{}, fault.Of(fault.Invalid, problems...)
	}
	next := r.Apply(cur)
	if err := s.sealEventsKey(&next, r.EventsKey); err != nil {
		return Connection{}, err
	}
	if r.APIToken != nil {
		if err := s.seal(&next, *r.APIToken); err != nil {
			return Connection{}, err
		}
	} else if r.EventsKey == nil && next.Name == cur.Name && next.BaseURL == cur.BaseURL && next.IncrementalEvery == cur.IncrementalEvery &&
		next.FullEvery == cur.FullEvery && next.ExpiryLead == cur.ExpiryLead &&
		next.LowCompletionBelow == cur.LowCompletionBelow && next.BounceRateAbove == cur.BounceRateAbove {
		return cur, nil
	}
	next.Version = cur.Version + 1
	next.UpdatedAt = s.now()
	if err := s.Store.UpdateSurveyConnection(ctx, next, cur.Version); err != nil {
		return Connection{}, err
	}
	return s.Store.GetSurveyConnection(ctx, id)
}

// Delete soft-deletes a connection and drops its synced data; notifications already
// recorded are still delivered.
func (s *Service) Delete(ctx context.Context, id string) error {
	return s.Store.DeleteSurveyConnection(ctx, id, s.now())
}

// RequestSync asks for a full sync now (any node's scheduler picks it up).
func (s *Service) RequestSync(ctx context.Context, id string) (Connection, error) {
	if err := s.Store.RequestSurveySync(ctx, id, s.now()); err != nil {
		return Connection{}, err
	}
	if s.Wake != nil {
		s.Wake()
	}
	return s.Store.GetSurveyConnection(ctx, id)
}

// TestResult is the answer of POST /v1/survey-connections/{id}/test.
type TestResult struct {
	OK         bool    `json:"ok"`
	StatusCode int     `json:"statusCode"`
	LatencyMS  float64 `json:"latencyMs"`
	UserID     string  `json:"userId,omitempty"`
	BrandID    string  `json:"brandId,omitempty"`
	Error      string  `json:"error,omitempty"`
	ErrorCode  string  `json:"errorCode,omitempty"`
}

// Test calls whoami with the connection's token; what Qualtrics answered, good or bad, is in
// the result.
func (s *Service) Test(ctx context.Context, id string) (TestResult, error) {
	c, err := s.Store.GetSurveyConnection(ctx, id)
	if err != nil {
		return TestResult{}, err
	}
	tok, err := s.Box.Open(c.ID, c.Sealed)
	if err != nil {
		return TestResult{}, fmt.Errorf("test %s: %w", c.ID, err)
	}
	sess, err := s.Client.Open(c.BaseURL, tok, Budget{Max: 3}) // whoami, and two retries after a 429
	if err != nil {
		return TestResult{}, err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, 30*time.Second, errors.New("survey connection test timed out"))
	defer cancel()
	start := time.Now()
	who, err := sess.WhoAmI(ctx)
	res := TestResult{LatencyMS: float64(time.Since(start).Microseconds()) / 1000}
	var ae *APIError
	switch {
	case err == nil:
		res.OK, res.StatusCode, res.UserID, res.BrandID = true, 200, who.UserID, who.BrandID
		if who.BrandID != "" && who.BrandID != c.BrandID {
			_ = s.Store.SetSurveyBrand(ctx, c.ID, who.BrandID)
		}
	case errors.As(err, &ae):
		res.StatusCode, res.Error, res.ErrorCode = ae.Status, ae.Message, ae.Code
	default:
		res.Error = err.Error()
	}
	return res, nil
}
