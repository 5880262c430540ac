package notify

import (
	"context"
	"time"

	"github.com/qgate/qgate/internal/fault"
)

// ReasonRecipientFinished is the exclusion reason of a notification delivery cancelled
// because the recipient finished the survey before it went out.
const ReasonRecipientFinished = "recipient_finished"

// Outgoing is a message with its deliveries, one per channel subscribed to it.
type Outgoing struct {
	Message    Message
	Deliveries []Target
}

// Target is one delivery of a message: the channel, the delivery's stable ID
// (delivery.ID(message ID, channel ID)) and the payload rendered for the channel's kind.
type Target struct {
	ChannelID  string
	DeliveryID string
	Payload    []byte
}

// Store is what notify needs from persistence.
type Store interface {
	CreateChannel(ctx context.Context, c Channel) error
	GetChannel(ctx context.Context, id string) (Channel, error)
	ListChannels(ctx context.Context) ([]Channel, error)
	UpdateChannel(ctx context.Context, c Channel, expectVersion int64) error
	DeleteChannel(ctx context.Context, id string, at time.Time) error

	// PublishNotifications records each message once by ID and, in the same transaction and
	// only when the ID is new, each of its deliveries as a pending delivery of the delivery
	// engine (an update named by the message ID, a delivery per channel) parked due now for
	// the channel's lane. It returns how many messages were new.
	PublishNotifications(ctx context.Context, out []Outgoing, now time.Time) (int, error)
	// CancelNotifications ends the pending and retrying deliveries of the messages about
	// subject of the given types as excluded with reason; it returns how many.
	CancelNotifications(ctx context.Context, connID, subject string, types []string, reason string, now time.Time) (int, error)
}

// Errors of this package.
var (
	ErrNotFound        = fault.New(fault.NotFound, "id", "channel_not_found", "no such notification channel")
	ErrNameTaken       = fault.New(fault.Conflict, "name", "name_taken", "another notification channel already has this name")
	ErrVersionConflict = fault.New(fault.Conflict, "version", "version_conflict", "the channel changed since the version given; get it again and retry")
)
