package client

import (
	"encoding/json"
	"time"
)

// Problem is one thing wrong with a request, as qgate reports it.
type Problem struct {
	// Path says where: a JSON path into the request body ("identityMappings[0].target"),
	// "query.<name>", "header.<Name>", or "" for the whole request.
	Path string `json:"path"`
	// Code is stable and machine-readable, such as "destination_not_found".
	Code string `json:"code"`
	// Message is a sentence for humans.
	Message string `json:"message"`
}

// Verdict statuses of an [IngestResult].
const (
	IngestAccepted    = "accepted"
	IngestRejected    = "rejected"
	IngestUnavailable = "unavailable" // valid, but Kafka did not acknowledge it; safe to send again
)

// IngestResponse is qgate's answer to POST /v1/profiles: one verdict per profile sent.
type IngestResponse struct {
	// Accepted is how many profiles were accepted (queued on Kafka).
	Accepted int `json:"accepted"`
	// Results holds one verdict per profile, in request order.
	Results []IngestResult `json:"results"`
}

// UpdateIDs returns the update IDs of the accepted profiles, in request order.
func (r *IngestResponse) UpdateIDs() []string {
	var ids []string
	for _, res := range r.Results {
		if res.Status == IngestAccepted {
			ids = append(ids, res.UpdateID)
		}
	}
	return ids
}

// IngestResult is the verdict on the profile at Index of the request.
type IngestResult struct {
	Index int `json:"index"`
	// UpdateID is set when Status is IngestAccepted; look it up with [Client.GetUpdate].
	UpdateID string `json:"updateId,omitempty"`
	// Status is IngestAccepted, IngestRejected or IngestUnavailable.
	Status string `json:"status"`
	// Errors says why a profile was rejected or unavailable. Paths are relative to the profile.
	Errors []Problem `json:"errors,omitempty"`
}

// Role is what an API key may do.
type Role string

// Roles of API keys. RoleAdmin may do everything.
const (
	RoleIngest   Role = "ingest"
	RoleOperator Role = "operator"
	RoleSupport  Role = "support"
	RoleAdmin    Role = "admin"
)

// Key is a stored API key; never its secret.
type Key struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Role      Role       `json:"role"`
	CreatedAt time.Time  `json:"createdAt"`
	RevokedAt *time.Time `json:"revokedAt,omitempty"` // nil while the key is live
}

// CreatedKey is a new key with its secret, which qgate shows only once.
type CreatedKey struct {
	Key
	// Secret is what to send as the API key ("qg_<id>_<secret>"). Keep it safe: qgate stores
	// only a hash and can never show it again.
	Secret string `json:"key"`
}

// Identity mapping targets.
const (
	TargetEmail      = "email"
	TargetExternalID = "external_id"
)

// IdentityMapping maps a CDP identity namespace to a Qualtrics identity: {"Email", "email"},
// or {"ECID" or a custom namespace, "external_id"}.
type IdentityMapping struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// AttributeMapping copies the profile value at a dotted camelCase Source path (such as
// "person.name.firstName") to the camelCase payload key Target.
type AttributeMapping struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// Destination is a Qualtrics JSON-event workflow as qgate shows it. The API token is never
// shown, only its last 4 characters.
type Destination struct {
	ID                 string             `json:"id"`
	Name               string             `json:"name"`
	Description        string             `json:"description"`
	URL                string             `json:"url"`
	Username           string             `json:"username"`
	APITokenLast4      string             `json:"apiTokenLast4"`
	IdentityMappings   []IdentityMapping  `json:"identityMappings"`
	AttributeMappings  []AttributeMapping `json:"attributeMappings"`
	Audiences          []string           `json:"audiences"`
	RateLimitPerMinute int                `json:"rateLimitPerMinute"`
	// Enabled false: new updates are not routed to the destination.
	Enabled bool `json:"enabled"`
	// Paused true: updates are routed and wait; nothing is sent until resume.
	Paused bool `json:"paused"`
	// Version increases by one on every change; pass it to [Client.UpdateDestination] as
	// ifMatch for an optimistic-concurrency check.
	Version   int64      `json:"version"`
	CreatedAt time.Time  `json:"createdAt"`
	UpdatedAt time.Time  `json:"updatedAt"`
	DeletedAt *time.Time `json:"deletedAt,omitempty"`
}

// NewDestination is the body of a destination registration. Name, URL, Username, APIToken,
// IdentityMappings and Audiences are required; qgate validates every field and reports every
// problem at once.
type NewDestination struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
	// URL is the Qualtrics JSON-event trigger URL: https on an allowed host.
	URL      string `json:"url"`
	Username string `json:"username"`
	// APIToken is write-only: qgate encrypts it at rest and never shows it again.
	APIToken          string             `json:"apiToken"`
	IdentityMappings  []IdentityMapping  `json:"identityMappings"`
	AttributeMappings []AttributeMapping `json:"attributeMappings,omitempty"`
	Audiences         []string           `json:"audiences"`
	// RateLimitPerMinute is 1–3000; 0 leaves qgate's default (3000).
	RateLimitPerMinute int `json:"rateLimitPerMinute,omitempty"`
	// Enabled nil leaves qgate's default (true).
	Enabled *bool `json:"enabled,omitempty"`
	// Paused nil leaves qgate's default (false).
	Paused *bool `json:"paused,omitempty"`
}

// DestinationPatch is a partial change: only the fields that are set change. A nil pointer
// or a nil slice is sent as JSON null, which qgate treats as absent; to clear a string send a
// pointer to "", to clear a list a non-nil empty slice. Go 1.26's new(expr) makes the
// pointers: DestinationPatch{Paused: new(true)}.
type DestinationPatch struct {
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
	URL         *string `json:"url,omitempty"`
	Username    *string `json:"username,omitempty"`
	// APIToken rotates the token.
	APIToken           *string            `json:"apiToken,omitempty"`
	IdentityMappings   []IdentityMapping  `json:"identityMappings"`
	AttributeMappings  []AttributeMapping `json:"attributeMappings"`
	Audiences          []string           `json:"audiences"`
	RateLimitPerMinute *int               `json:"rateLimitPerMinute,omitempty"`
	Enabled            *bool              `json:"enabled,omitempty"`
	Paused             *bool              `json:"paused,omitempty"`
}

// DestinationPage is one page of destinations.
type DestinationPage struct {
	Destinations []Destination
	// NextCursor is the cursor of the next page; "" on the last page.
	NextCursor string
}

// ListOptions selects a page of a list.
type ListOptions struct {
	// Limit is the page size, 1–200; 0 leaves qgate's default (50).
	Limit int
	// Cursor is the NextCursor of the previous page; "" for the first page.
	Cursor string
}

// TestResult is what a destination said to a test event.
type TestResult struct {
	Delivered bool `json:"delivered"`
	// StatusCode is the destination's HTTP status; 0 without an answer or when excluded.
	StatusCode int     `json:"statusCode"`
	LatencyMs  float64 `json:"latencyMs"`
	// Outcome is delivered, retryable, destination_fault, permanent or excluded.
	Outcome string `json:"outcome"`
	// Reason says why, such as unauthorized, timeout or missing_identity; "" when delivered.
	Reason string `json:"reason"`
	// BodyExcerpt is the start of the destination's answer.
	BodyExcerpt string `json:"bodyExcerpt"`
	// Payload is the JSON that was sent; nil when excluded.
	Payload json.RawMessage `json:"payload,omitempty"`
}

// Delivery statuses.
const (
	StatusPending      = "pending"
	StatusDelivered    = "delivered"
	StatusRetrying     = "retrying"
	StatusDeadLettered = "dead_lettered"
	StatusExcluded     = "excluded"
)

// Delivery is one (update, destination) delivery with its attempts.
type Delivery struct {
	// DeliveryID is also the Idempotency-Key qgate sends to Qualtrics.
	DeliveryID    string `json:"deliveryId"`
	UpdateID      string `json:"updateId"`
	DestinationID string `json:"destinationId"`
	// Status is one of the Status constants.
	Status string `json:"status"`
	// Reason says why it was excluded or dead-lettered (missing_identity, client_error, …).
	Reason        string     `json:"reason,omitempty"`
	CreatedAt     time.Time  `json:"createdAt"`
	UpdatedAt     time.Time  `json:"updatedAt"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	Attempts      []Attempt  `json:"attempts"`
}

// Attempt is one try at delivering.
type Attempt struct {
	N  int       `json:"n"`
	At time.Time `json:"at"`
	// StatusCode is the destination's HTTP status; 0 when there was no HTTP answer.
	StatusCode int     `json:"statusCode,omitempty"`
	LatencyMs  float64 `json:"latencyMs"`
	// Outcome is delivered, retryable, destination_fault or permanent.
	Outcome string `json:"outcome"`
	Reason  string `json:"reason"`
	// Error is an excerpt of the answer or the transport error.
	Error string `json:"error,omitempty"`
}

// UpdateView is an ingested update once routed, with each of its deliveries.
type UpdateView struct {
	UpdateID string `json:"updateId"`
	// ProfileKey is the profile's ordering key (a hashed identity).
	ProfileKey string     `json:"profileKey"`
	ReceivedAt time.Time  `json:"receivedAt"`
	RoutedAt   time.Time  `json:"routedAt"`
	Audiences  []string   `json:"audiences"`
	Deliveries []Delivery `json:"deliveries"`
}

// DeliveryQuery filters the delivery search; every field is optional.
type DeliveryQuery struct {
	DestinationID string
	// Identity is an email address or external ID; qgate hashes it as stored (trimmed,
	// lower-cased) and never keeps it in plaintext.
	Identity string
	// Status is one of the Status constants.
	Status string
	// Reason is such as client_error or missing_identity.
	Reason string
	// Since and Until bound when the delivery last changed: Since <= change < Until.
	// The zero time means no bound.
	Since, Until time.Time
	// Limit is the page size, 1–200; 0 leaves qgate's default (50).
	Limit int
	// Cursor is the NextCursor of the previous page.
	Cursor string
}

// DeadLetterQuery filters the dead letters: the delivery search restricted to dead-lettered
// deliveries. Fields mean what they mean in [DeliveryQuery].
type DeadLetterQuery struct {
	DestinationID string
	Identity      string
	Reason        string
	Since, Until  time.Time
	Limit         int
	Cursor        string
}

// DeliveryPage is one page of deliveries, most recently changed first.
type DeliveryPage struct {
	Deliveries []Delivery
	// NextCursor is the cursor of the next page; "" on the last page.
	NextCursor string
}

// ReplayRequest selects dead letters to replay: either DeliveryIDs (up to 1,000) or Filter,
// not both.
type ReplayRequest struct {
	DeliveryIDs []string      `json:"deliveryIds,omitempty"`
	Filter      *ReplayFilter `json:"filter,omitempty"`
	// Force replays even dead letters whose destination already received a newer update of
	// the same profile (they are skipped otherwise: see ReplayResult.Skipped).
	Force bool `json:"force,omitempty"`
}

// ReplayFilter selects dead letters of one destination.
type ReplayFilter struct {
	DestinationID string `json:"destinationId"`
	Reason        string `json:"reason,omitempty"`
	// Since and Until bound when the deliveries last changed; nil means no bound.
	Since *time.Time `json:"since,omitempty"`
	Until *time.Time `json:"until,omitempty"`
	// Limit is how many to replay at most, oldest updates first (1–10,000; 0: 10,000).
	Limit int `json:"limit,omitempty"`
}

// ReplayResult says which dead letters were put back to pending. Deliveries named that were
// not dead-lettered were left alone and are not listed.
type ReplayResult struct {
	Replayed    int             `json:"replayed"`
	DeliveryIDs []string        `json:"deliveryIds"`
	Skipped     []ReplaySkipped `json:"skipped"`
}

// ReplaySkipped is a dead letter a replay left alone, and why: "newer_delivered" (the
// destination already received a newer update of the same profile; replay with Force).
type ReplaySkipped struct {
	DeliveryID    string `json:"deliveryId"`
	Reason        string `json:"reason"`
	NewerUpdateID string `json:"newerUpdateId,omitempty"`
}

// Stats windows.
const (
	Window1h  = "1h"
	Window24h = "24h"
	Window7d  = "7d"
)

// DestinationStats are a destination's figures over a window.
type DestinationStats struct {
	DestinationID string    `json:"destinationId"`
	Window        string    `json:"window"`
	Since         time.Time `json:"since"`
	Paused        bool      `json:"paused"`
	Circuit       Circuit   `json:"circuit"`
	// Received counts deliveries routed to the destination in the window.
	Received int `json:"received"`
	// ByStatus counts them by current status (keys are the Status constants).
	ByStatus             map[string]int `json:"byStatus"`
	ExcludedByReason     map[string]int `json:"excludedByReason"`
	DeadLetteredByReason map[string]int `json:"deadLetteredByReason"`
	// AttemptLatencyMs is the successful POST's round trip.
	AttemptLatencyMs Percentiles `json:"attemptLatencyMs"`
	// EndToEndLatencyMs is ingest acknowledgement to delivery.
	EndToEndLatencyMs Percentiles `json:"endToEndLatencyMs"`
	// Backlog counts every unfinished delivery (pending or retrying, any age).
	Backlog int `json:"backlog"`
	// Parked counts the part of the backlog waiting in the store.
	Parked int `json:"parked"`
}

// Circuit is a destination's circuit breaker.
type Circuit struct {
	// State is closed, open or half-open.
	State string `json:"state"`
	// Source is node (authoritative: the answering node sends to the destination) or alerts
	// (read from the last circuit alert; never half-open).
	Source string `json:"source"`
	// Since is when the circuit last opened or closed, if known.
	Since *time.Time `json:"since,omitempty"`
}

// Percentiles summarise latencies in milliseconds; P50 and P99 are nil without samples.
type Percentiles struct {
	Samples int      `json:"samples"`
	P50     *float64 `json:"p50"`
	P99     *float64 `json:"p99"`
}
