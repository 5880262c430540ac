package notify

import (
	"context"
	"time"

	"github.com/qgate/qgate/internal/fault"
)

// Delivery statuses of a notification to one channel.
const (
	StatusPending      = "pending"
	StatusRetrying     = "retrying"
	StatusDelivered    = "delivered"
	StatusDeadLettered = "dead_lettered"
	// StatusCancelled: not sent because it no longer applies (the recipient finished).
	StatusCancelled = "cancelled"
)

// Statuses lists every delivery status.
var Statuses = []string{StatusPending, StatusRetrying, StatusDelivered, StatusDeadLettered, StatusCancelled}

// Delivery is one notification on its way to one channel.
type Delivery struct {
	ID             string     `json:"id"`
	NotificationID string     `json:"notificationId"`
	ChannelID      string     `json:"channelId"`
	Type           string     `json:"type"`
	ConnectionID   string     `json:"connectionId"`
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	NextAt         *time.Time `json:"nextAttemptAt"`
	FirstAttemptAt *time.Time `json:"firstAttemptAt"`
	LastStatusCode int        `json:"lastStatusCode"`
	LastError      string     `json:"lastError,omitempty"`
	DeliveredAt    *time.Time `json:"deliveredAt"`
	OccurredAt     time.Time  `json:"occurredAt"`
	CreatedAt      time.Time  `json:"createdAt"`
	UpdatedAt      time.Time  `json:"updatedAt"`

	Body  []byte `json:"-"`
	Text  string `json:"-"`
	Links []Link `json:"-"`
}

// Attempt is one try of a delivery, recorded with its outcome.
type Attempt struct {
	DeliveryID string
	N          int
	At         time.Time
	StatusCode int
	Error      string
	Latency    time.Duration
	// The delivery after the attempt.
	Status string
	NextAt *time.Time
}

// Outgoing is a message with the channels it goes to.
type Outgoing struct {
	Message    Message
	ChannelIDs []string
}

// Filter selects deliveries for the support API.
type Filter struct {
	Status         string
	ChannelID      string
	NotificationID string
	Limit          int
}

// Store is what notify needs from persistence.
type Store interface {
	CreateChannel(ctx context.Context, c Channel) error
	GetChannel(ctx context.Context, id string) (Channel, error)
	ListChannels(ctx context.Context) ([]Channel, error)
	UpdateChannel(ctx context.Context, c Channel, expectVersion int64) error
	DeleteChannel(ctx context.Context, id string, at time.Time) error

	// PublishNotifications records each message once by ID (a unique constraint) and, for
	// those new, one pending delivery per channel, in one transaction. It returns how many
	// messages were new; an ID already recorded changes nothing.
	PublishNotifications(ctx context.Context, out []Outgoing, now time.Time) (int, error)
	// ClaimDueNotifications leases up to limit deliveries due at now (pending or retrying)
	// to node until now+lease: a delivery leased to one node is not sent by another.
	ClaimDueNotifications(ctx context.Context, node string, now time.Time, lease time.Duration, limit int) ([]Delivery, error)
	// RecordNotificationAttempt stores an attempt and moves its delivery on, releasing the lease.
	RecordNotificationAttempt(ctx context.Context, a Attempt) error
	// DeferNotification releases a leased delivery without an attempt, due again at until.
	DeferNotification(ctx context.Context, id string, until time.Time) error
	// NotificationDeliveries lists deliveries, newest first.
	NotificationDeliveries(ctx context.Context, f Filter) ([]Delivery, error)
	// CancelNotifications cancels the pending and retrying deliveries of the connection's
	// messages about subject of the given types, with reason; it returns how many.
	CancelNotifications(ctx context.Context, connID, subject string, types []string, reason string, now time.Time) (int, error)
	// ReplayNotifications makes dead-lettered deliveries pending again, due at now.
	ReplayNotifications(ctx context.Context, ids []string, now time.Time) (int, error)
}

// Errors of this package.
var (
	ErrNotFound        = fault.New(fault.NotFound, "id", "channel_not_found", "no such notification channel")
	ErrNameTaken       = fault.New(fault.Conflict, "name", "name_taken", "another notification channel already has this name")
	ErrVersionConflict = fault.New(fault.Conflict, "version", "version_conflict", "the channel changed since the version given; get it again and retry")
)
