// Package delivery holds the delivery model shared by the router (which creates deliveries),
// the dispatcher (which attempts them), the store (which records them) and the support API
// (which reports them): the job carried on Kafka, statuses, reasons, attempts and the status
// events that move a delivery from one status to the next. It imports nothing of qgate.
package delivery

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// Status of a delivery (BRIEF §6).
type Status string

// The statuses.
const (
	Pending      Status = "pending"
	Delivered    Status = "delivered"
	Retrying     Status = "retrying"
	DeadLettered Status = "dead_lettered"
	Excluded     Status = "excluded"
)

// Terminal reports whether a delivery in s is finished.
func (s Status) Terminal() bool { return s == Delivered || s == DeadLettered || s == Excluded }

// Reasons for exclusions and closures that qgate decides itself (attempt reasons come from the
// Qualtrics outcome classification).
const (
	ReasonMissingIdentity    = "missing_identity"
	ReasonPayloadTooLarge    = "payload_too_large"
	ReasonConsentDenied      = "consent_denied" // the destination's consentPolicy is not granted
	ReasonDestinationDeleted = "destination_deleted"
	ReasonRetryWindow        = "retry_window_exceeded"
)

// MaxPayloadBytes is Qualtrics' limit for one JSON event.
const MaxPayloadBytes = 100 * 1024

// JobVersion is the job format this build writes.
const JobVersion = 1

// Job is the value of a message on the delivery-jobs topic, keyed by destination ID so that one
// consumer serves a destination at a time (exact rate limits, per-profile order).
type Job struct {
	V             int       `json:"v"`
	DeliveryID    string    `json:"deliveryId"`
	UpdateID      string    `json:"updateId"`
	DestinationID string    `json:"destinationId"`
	ProfileKey    string    `json:"profileKey"`
	ReceivedAt    time.Time `json:"receivedAt"`
	// Generation is the destination configuration generation the router routed with (see
	// destination.Registry): whoever sends the job first brings its registry up to it, so
	// every change acknowledged before the update was accepted applies. 0: not known (jobs
	// written before it existed).
	Generation int64           `json:"generation,omitempty"`
	Payload    json.RawMessage `json:"payload"`
	// EmailHash and ExternalIDHash are the delivery's identity hashes (as on its Event), so
	// that its outcome can create its row when the router's pending row was not written
	// (Batch.Routed). Empty in jobs written before they existed: the pending row has them.
	EmailHash      string `json:"emailHash,omitempty"`
	ExternalIDHash string `json:"externalIdHash,omitempty"`
}

// ID returns the stable delivery ID of (update, destination): "dlv_" and 32 hex digits. It is
// also the Idempotency-Key sent to the destination, so retries and redeliveries after a crash
// carry the same key.
//
// When the update ID is a UUIDv7 (qgate's own, update.NewID), the first 12 hex digits are its
// 48-bit millisecond timestamp and the other 20 a hash of (update, destination). Time-ordered
// IDs keep the store's indexes keyed by delivery ID (deliveries, attempts, parked) appending at
// their right edge, where the pages are already cached, instead of touching a random page of an
// ever larger index for every insert and lookup. Any other update ID gives 32 hex digits of the
// hash.
func ID(updateID, destinationID string) string {
	h := sha256.Sum256([]byte(updateID + "\x00" + destinationID))
	var buf [36]byte
	copy(buf[:], "dlv_")
	if ts, ok := uuidV7Time(updateID); ok {
		copy(buf[4:], ts)
		hex.Encode(buf[16:], h[:10])
	} else {
		hex.Encode(buf[4:], h[:16])
	}
	return string(buf[:])
}

// uuidV7Time returns the 12 hex digits of a UUIDv7's timestamp (lower case), if id is one.
func uuidV7Time(id string) ([]byte, bool) {
	// xxxxxxxx-xxxx-7xxx-[89ab]xxx-xxxxxxxxxxxx
	if len(id) != 36 || id[8] != '-' || id[13] != '-' || id[14] != '7' || id[18] != '-' || id[23] != '-' {
		return nil, false
	}
	ts := make([]byte, 0, 12)
	for _, c := range []byte(id[0:8] + id[9:13]) {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f':
		case c >= 'A' && c <= 'F':
			c += 'a' - 'A'
		default:
			return nil, false
		}
		ts = append(ts, c)
	}
	return ts, true
}

// Attempt is one try at delivering.
type Attempt struct {
	N          int       `json:"n"`
	At         time.Time `json:"at"`
	StatusCode int       `json:"statusCode,omitempty"`
	LatencyMS  float64   `json:"latencyMs"`
	Outcome    string    `json:"outcome"`
	Reason     string    `json:"reason"`
	Error      string    `json:"error,omitempty"`
}

// Event records a delivery's new status (and the attempt that caused it, if any). Events for
// one delivery are applied in order; a terminal status is never overwritten by a non-terminal
// one, so a replayed event after a crash cannot move a delivery backwards.
type Event struct {
	DeliveryID     string
	UpdateID       string
	DestinationID  string
	Status         Status
	Reason         string
	At             time.Time
	Attempt        *Attempt
	NextAttemptAt  *time.Time
	Payload        json.RawMessage // kept with dead letters, for replay
	EmailHash      string          // set when the delivery is created
	ExternalIDHash string
	// CreatedAt is when the delivery was created, when that is earlier than At: an outcome
	// written in place of its pending row (Batch.Routed) keeps the pending row's time. Zero: At.
	CreatedAt time.Time
}

// Update is the record of one accepted profile update and its fan-out.
type Update struct {
	UpdateID   string    `json:"updateId"`
	ProfileKey string    `json:"profileKey"`
	ReceivedAt time.Time `json:"receivedAt"`
	RoutedAt   time.Time `json:"routedAt"`
	Audiences  []string  `json:"audiences"`
	// Queued are the destinations the update was queued for (its pending deliveries, in
	// Batch.Routed). The store keeps them on the update's row, so a delivery is known to be
	// pending from the moment its update is recorded, whether or not its own row exists yet.
	Queued []string `json:"-"`
}

// Record is a delivery as support sees it.
type Record struct {
	DeliveryID    string     `json:"deliveryId"`
	UpdateID      string     `json:"updateId"`
	DestinationID string     `json:"destinationId"`
	Status        Status     `json:"status"`
	Reason        string     `json:"reason,omitempty"`
	CreatedAt     time.Time  `json:"createdAt"`
	UpdatedAt     time.Time  `json:"updatedAt"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	Attempts      []Attempt  `json:"attempts"`
}

// HashIdentity returns the stored, searchable form of an email or external ID: SHA-256 hex of
// the lower-cased, trimmed value. Logs carry the same hash, never the address.
func HashIdentity(v string) string {
	h := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(v))))
	return hex.EncodeToString(h[:])
}
