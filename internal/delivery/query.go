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
}

// Replayed names a delivery a replay requeued and the destination it waits for.
type Replayed struct {
	DeliveryID    string
	DestinationID string
}
