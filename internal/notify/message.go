package notify

import "time"

// Event types a channel may subscribe to.
const (
	TypeSurveyRequest  = "survey.request"
	TypeSurveyExpiring = "survey.expiring"
	TypeSurveyStats    = "survey.stats"
	// Threshold alerts on a distribution's health, for brand admins.
	TypeLowCompletion = "survey.lowCompletion"
	TypeBounceSpike   = "survey.bounceSpike"
)

// Types lists every event type.
var Types = []string{TypeSurveyRequest, TypeSurveyExpiring, TypeSurveyStats, TypeLowCompletion, TypeBounceSpike}

// Message is one notification, produced by a domain (survey watch) and delivered to every
// channel subscribed to its Type (and, when the channel names connections, its ConnectionID).
// ID is stable per subject: publishing the same ID again is a no-op, across syncs, restarts
// and nodes. It is the webhook-id and the Idempotency-Key of every attempt.
type Message struct {
	ID           string
	Type         string
	ConnectionID string
	// Subject groups the messages about one thing (a recipient of a distribution), so that
	// queued ones can be cancelled together (Cancel).
	Subject    string
	OccurredAt time.Time
	Body       []byte // the JSON webhook body
	Text       string // a readable one-paragraph rendering, for Slack and Teams
	Links      []Link // buttons for Slack and Teams
	// Email is the recipient's address ("" for brand-admin messages): support finds the
	// deliveries by it (GET /v1/deliveries?identity=), stored hashed like a profile's.
	Email string
}

// Link is a labelled URL in a readable message.
type Link struct {
	Label string `json:"label"`
	URL   string `json:"url"`
}
