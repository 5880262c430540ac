package destination

import (
	"context"
	"encoding/json"
	"time"

	"github.com/qgate/qgate/internal/fault"
)

// Store is what the destination package needs from persistence. Destinations are stored with
// their token sealed (SealedToken, TokenLast4); Token is never written.
//
// Every change (create, update, delete) increments one store-wide configuration generation in
// the same transaction and records it as the row's Generation, and changes are numbered in
// commit order: once ConfigGeneration has answered g, every change numbered up to g is visible
// to DestinationsChangedAfter.
type Store interface {
	// ConfigGeneration returns the generation of the latest destination change committed.
	ConfigGeneration(ctx context.Context) (int64, error)
	// CreateDestination inserts d. ErrNameTaken when a non-deleted destination has d.Name.
	CreateDestination(ctx context.Context, d Destination) error
	// GetDestination returns a destination by ID; a deleted one only when includeDeleted.
	// ErrNotFound otherwise.
	GetDestination(ctx context.Context, id string, includeDeleted bool) (Destination, error)
	// ListDestinations returns up to limit non-deleted destinations with IDs after afterID
	// ("" for the first page), in ID (creation) order.
	ListDestinations(ctx context.Context, afterID string, limit int) ([]Destination, error)
	// UpdateDestination replaces the stored destination d.ID if it is not deleted and its
	// version is still expectVersion. ErrVersionConflict when the version moved on, ErrNotFound
	// when absent or deleted, ErrNameTaken on a name clash.
	UpdateDestination(ctx context.Context, d Destination, expectVersion int64) error
	// DeleteDestination soft-deletes: sets deleted_at and updated_at to at and bumps the
	// version. ErrNotFound when absent or already deleted.
	DeleteDestination(ctx context.Context, id string, at time.Time) error
	// DestinationsChangedAfter returns every destination, deleted ones included, whose last
	// change has a generation above gen (0: all of them), in ID order.
	DestinationsChangedAfter(ctx context.Context, gen int64) ([]Destination, error)
}

// Errors of this package; the api package maps their kinds to statuses.
var (
	ErrNotFound        = fault.New(fault.NotFound, "id", "destination_not_found", "no such destination")
	ErrNameTaken       = fault.New(fault.Conflict, "name", "name_taken", "another destination already has this name")
	ErrVersionConflict = fault.New(fault.Conflict, "version", "version_conflict", "the destination changed since the version given; get it again and retry")
)

// Tester sends a test event to a destination. The package declares it; the router/dispatcher
// implements it with the real transform and Qualtrics client.
type Tester interface {
	// Test sends one sample profile (or the given one, if non-nil) through the real transform
	// and client, not counted as a delivery. An error means the test could not be run (a
	// fault kind such as fault.Invalid for an unusable profile maps to its status); what the
	// destination answered, good or bad, is in the TestResult.
	Test(ctx context.Context, d Destination, profile json.RawMessage) (TestResult, error)
}

// TestResult is what POST /v1/destinations/{id}/test answers.
type TestResult struct {
	Delivered   bool            `json:"delivered"`
	StatusCode  int             `json:"statusCode"`
	LatencyMS   float64         `json:"latencyMs"`
	Outcome     string          `json:"outcome"` // delivered|retryable|destination_fault|permanent|excluded
	Reason      string          `json:"reason"`
	BodyExcerpt string          `json:"bodyExcerpt"`
	Payload     json.RawMessage `json:"payload,omitempty"` // what was sent
}
