package alert

import (
	"context"
	"encoding/json"
	"time"

	"github.com/qgate/qgate/internal/fault"
)

// Delivery statuses of a fired alert.
const (
	StatusPending      = "pending"
	StatusRetrying     = "retrying"
	StatusDelivered    = "delivered"
	StatusDeadLettered = "dead_lettered"
)

// Alert is one firing of an event for one subscription, and its delivery to the webhook.
type Alert struct {
	ID              string          `json:"id"`
	SubscriptionID  string          `json:"subscriptionId"`
	Event           string          `json:"event"`
	DestinationID   string          `json:"destinationId"`
	DestinationName string          `json:"destinationName"`
	Message         string          `json:"message"`
	Data            json.RawMessage `json:"data"`
	FiredAt         time.Time       `json:"firedAt"`
	Status          string          `json:"status"`
	Attempts        int             `json:"attempts"`
	LastStatusCode  int             `json:"lastStatusCode"`
	LastError       string          `json:"lastError,omitempty"`
	NextAttemptAt   *time.Time      `json:"nextAttemptAt"`
	FirstAttemptAt  *time.Time      `json:"-"`
	DeliveredAt     *time.Time      `json:"deliveredAt"`
}

// Episode names the condition an alert belongs to: one subscription, one condition ("circuit"
// for circuit.opened and circuit.closed, else the event type), one destination. An episode is
// open from the condition's start until it clears; one alert fires per start.
type Episode struct {
	SubscriptionID string
	Condition      string
	DestinationID  string
}

// Signals are the figures of one destination the rules read.
type Signals struct {
	CircuitOpen     bool
	LastAuthFailure time.Time // latest 401/403 attempt, zero if none in the look-back
	LastAuthStatus  int
	LastSuccess     time.Time // latest delivered attempt, zero if none in the look-back
	OldestWaiting   time.Time // created_at of the oldest pending or retrying delivery; zero if none
}

// Attempt is the outcome of one try to deliver an alert.
type Attempt struct {
	AlertID    string
	N          int
	At         time.Time
	StatusCode int
	Error      string
	Status     string     // the alert's status after the attempt
	NextAt     *time.Time // when retrying
}

// Filter selects alerts for GET /v1/alerts.
type Filter struct {
	DestinationID  string
	SubscriptionID string
	Event          string
	Status         string
	Limit          int
}

// Store is what alert needs from persistence.
type Store interface {
	CreateAlertSubscription(ctx context.Context, s Subscription) error
	GetAlertSubscription(ctx context.Context, id string) (Subscription, error)
	ListAlertSubscriptions(ctx context.Context) ([]Subscription, error)
	UpdateAlertSubscription(ctx context.Context, s Subscription, expectVersion int64) error
	DeleteAlertSubscription(ctx context.Context, id string, at time.Time) error

	// AlertSignals reads a destination's circuit and auth state, and its oldest waiting
	// delivery; lookBack bounds how far back attempts are read.
	AlertSignals(ctx context.Context, destID string, now time.Time, lookBack time.Duration) (Signals, error)
	// DeadLettersSince counts the destination's deliveries dead-lettered since.
	DeadLettersSince(ctx context.Context, destID string, since time.Time) (int, error)
	// AttemptsSince counts the destination's delivery attempts since, and the failed ones.
	AttemptsSince(ctx context.Context, destID string, since time.Time) (total, failed int, err error)

	// FireAlert opens the episode at at and records a (nil: the episode only), in one
	// transaction, only if the episode was not open already; it reports whether it did. Across
	// nodes, one wins.
	FireAlert(ctx context.Context, ep Episode, at time.Time, a *Alert) (bool, error)
	// ClearEpisode closes an open episode and, when then is not nil, records it (the
	// resolution's own alert, circuit.closed); it reports whether the episode was open.
	ClearEpisode(ctx context.Context, ep Episode, at time.Time, then *Alert) (bool, error)
	// OpenEpisodes lists the open episodes.
	OpenEpisodes(ctx context.Context) ([]Episode, error)

	// ClaimDueAlerts leases up to limit alerts due at now to node until now+lease.
	ClaimDueAlerts(ctx context.Context, node string, now time.Time, lease time.Duration, limit int) ([]Alert, error)
	// RecordAlertAttempt stores an attempt's outcome and releases the lease.
	RecordAlertAttempt(ctx context.Context, a Attempt) error
	// ListAlerts returns alerts matching f, newest first.
	ListAlerts(ctx context.Context, f Filter) ([]Alert, error)
}

// Errors of this package.
var (
	ErrNotFound        = fault.New(fault.NotFound, "id", "alert_subscription_not_found", "no such alert subscription")
	ErrNameTaken       = fault.New(fault.Conflict, "name", "name_taken", "another alert subscription already has this name")
	ErrVersionConflict = fault.New(fault.Conflict, "version", "version_conflict", "the subscription changed since the version given; get it again and retry")
)
