package survey

import (
	"context"
	"time"

	"github.com/qgate/qgate/internal/fault"
)

// Store is what survey watch needs from persistence. Connections are stored with the token
// sealed; Token is never written.
type Store interface {
	// CreateSurveyConnection inserts c; ErrNameTaken when a live connection has its name.
	CreateSurveyConnection(ctx context.Context, c Connection) error
	// GetSurveyConnection returns a live connection with its schedule state and its last
	// (and last good) sync; ErrNotFound otherwise.
	GetSurveyConnection(ctx context.Context, id string) (Connection, error)
	// ListSurveyConnections returns every live connection in ID (creation) order.
	ListSurveyConnections(ctx context.Context) ([]Connection, error)
	// UpdateSurveyConnection replaces the configuration of c.ID if its version is still
	// expectVersion: ErrVersionConflict, ErrNotFound, ErrNameTaken.
	UpdateSurveyConnection(ctx context.Context, c Connection, expectVersion int64) error
	// DeleteSurveyConnection soft-deletes the connection and removes its synced data.
	DeleteSurveyConnection(ctx context.Context, id string, at time.Time) error
	// RequestSurveySync marks a connection for a full sync at the next pass of any node.
	RequestSurveySync(ctx context.Context, id string, at time.Time) error
	// SetSurveyBrand records the brand learnt from whoami.
	SetSurveyBrand(ctx context.Context, id, brandID string) error

	// ClaimSurveyConnection takes or renews node's claim until now+ttl; false when another
	// node holds an unexpired claim.
	ClaimSurveyConnection(ctx context.Context, id, node string, now time.Time, ttl time.Duration) (bool, error)
	// ReleaseSurveyConnection gives up node's claim.
	ReleaseSurveyConnection(ctx context.Context, id, node string) error

	// StartSurveySync records a running sync.
	StartSurveySync(ctx context.Context, run SyncRun) error
	// FinishSurveySync records the end of a sync. On success it applies snap in the same
	// transaction and moves the connection's schedule state (last incremental/full, the
	// lastModified cursor, a pending sync request cleared); on failure nothing synced
	// changes.
	FinishSurveySync(ctx context.Context, run SyncRun, snap *Snapshot, next ScheduleState) error

	// LiveDistributions returns the connection's distributions whose links have not expired
	// at now (or carry no expiry), with their survey IDs.
	LiveDistributions(ctx context.Context, connID string, now time.Time) ([]Distribution, error)
	// SurveyRecipients returns every recipient of the connection's distributions whose links
	// have not expired at now, joined with link, distribution and survey.
	SurveyRecipients(ctx context.Context, connID string, now time.Time) ([]Recipient, error)

	// MarkSurveyResponse records a recipient's status from a pushed event; false when the
	// recipient is not synced yet.
	MarkSurveyResponse(ctx context.Context, connID, distID, contactID, status, responseID string, at time.Time) (bool, error)
	// SetSurveyActive records a survey (de)activated by a pushed event.
	SetSurveyActive(ctx context.Context, connID, surveyID string, active bool) (bool, error)

	// Reads for the people pages.
	PersonSurveys(ctx context.Context, email string, now time.Time) ([]Recipient, error)
	ListSurveys(ctx context.Context, connID string, activeOnly bool) ([]Survey, error)
	GetSurvey(ctx context.Context, surveyID string) (Survey, []DistributionView, error)
	GetDistribution(ctx context.Context, distID string) (DistributionView, []Recipient, error)
}

// ScheduleState is what a successful sync moves on.
type ScheduleState struct {
	LastIncrementalAt *time.Time
	LastFullAt        *time.Time
	SurveysSince      *time.Time
	// ClearRequestBefore clears a sync request made at or before this time.
	ClearRequestBefore *time.Time
	BrandID            string
}

// Errors of this package; the api package maps their kinds to statuses.
var (
	ErrNotFound             = fault.New(fault.NotFound, "id", "survey_connection_not_found", "no such survey connection")
	ErrNameTaken            = fault.New(fault.Conflict, "name", "name_taken", "another survey connection already has this name")
	ErrVersionConflict      = fault.New(fault.Conflict, "version", "version_conflict", "the connection changed since the version given; get it again and retry")
	ErrSurveyNotFound       = fault.New(fault.NotFound, "surveyId", "survey_not_found", "no such survey")
	ErrDistributionNotFound = fault.New(fault.NotFound, "id", "distribution_not_found", "no such distribution")
)
