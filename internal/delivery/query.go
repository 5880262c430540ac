package delivery

import "time"

// Query selects deliveries for the support search. Empty fields do not filter.
type Query struct {
	DestinationID string
	IdentityHash  string // HashIdentity of an email or external ID
	Status        Status
	Reason        string
	Since, Until  time.Time // on the delivery's last change; zero: open
	Cursor        string    // from a previous page's next cursor
	Limit         int
}

// ReplayFilter chooses dead-lettered deliveries to replay: by ID, or by destination (and
// optionally reason and last-change window). At most Limit are replayed per call.
type ReplayFilter struct {
	DeliveryIDs   []string
	DestinationID string
	Reason        string
	Since, Until  time.Time
	Limit         int
	// Force replays a dead letter even when a newer update of the same profile has already
	// been delivered to the destination (which the replay would then overwrite with older data).
	Force bool
}

// Replayed names a delivery a replay requeued and the destination it waits for.
type Replayed struct {
	DeliveryID    string
	DestinationID string
}

// SkipNewerDelivered is the reason a replay leaves a dead letter alone: the destination has
// already received a newer update of the same profile, so sending this one would go back in time.
const SkipNewerDelivered = "newer_delivered"

// Skipped names a dead letter a replay selected but left dead-lettered, and why.
type Skipped struct {
	DeliveryID string `json:"deliveryId"`
	Reason     string `json:"reason"`
	// NewerUpdateID is the delivered update that is newer (for SkipNewerDelivered).
	NewerUpdateID string `json:"newerUpdateId,omitempty"`
}

// ReplayOutcome is what a replay did: the deliveries requeued and those skipped.
type ReplayOutcome struct {
	Replayed []Replayed
	Skipped  []Skipped
}
