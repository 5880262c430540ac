// Package destination owns Qualtrics destinations: the model and its validation, the operator
// API (register, list, change, pause, resume, delete, test), token encryption at rest, and the
// in-memory registry other roles read destinations from.
package destination

import (
	"time"
)

// Identity mapping targets.
const (
	TargetEmail      = "email"
	TargetExternalID = "external_id"
)

// IdentityMapping maps a CDP identity namespace to a Qualtrics identity.
// Source "Email" → target "email"; source "ECID" or a custom namespace → target "external_id".
type IdentityMapping struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// AttributeMapping copies the profile value at a dotted source path (e.g.
// "person.name.firstName") to a camelCase target key of the payload.
type AttributeMapping struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// Destination is one Qualtrics JSON-event workflow qgate delivers to.
//
// Enabled=false takes the destination out of routing: updates that arrive meanwhile are not
// fanned out to it. Paused=true keeps routing but holds delivery: its deliveries wait and go out
// on resume. Deleted destinations stay in the store (DeletedAt set) so in-flight deliveries can
// be closed with reason destination_deleted.
type Destination struct {
	ID                 string             `json:"id"`
	Name               string             `json:"name"`
	Description        string             `json:"description"`
	URL                string             `json:"url"`
	Username           string             `json:"username"`
	TokenLast4         string             `json:"apiTokenLast4"`
	IdentityMappings   []IdentityMapping  `json:"identityMappings"`
	AttributeMappings  []AttributeMapping `json:"attributeMappings"`
	Audiences          []string           `json:"audiences"`
	ConsentPolicy      ConsentPolicy      `json:"consentPolicy"`
	RateLimitPerMinute int                `json:"rateLimitPerMinute"`
	Enabled            bool               `json:"enabled"`
	Paused             bool               `json:"paused"`
	Version            int64              `json:"version"`
	CreatedAt          time.Time          `json:"createdAt"`
	UpdatedAt          time.Time          `json:"updatedAt"`
	DeletedAt          *time.Time         `json:"deletedAt,omitempty"`
	// Generation is the store-wide configuration generation of the destination's last change
	// (set by the store; see Registry).
	Generation int64 `json:"-"`

	// Token is the plaintext API token, present only in memory (registry, dispatcher) after
	// decryption. It is never serialized, logged or stored.
	Token string `json:"-"`
	// SealedToken is the AES-256-GCM ciphertext of Token as stored.
	SealedToken []byte `json:"-"`
}

// DefaultRateLimitPerMinute is Qualtrics' API limit.
const DefaultRateLimitPerMinute = 3000

// HasAudience reports whether id is one of the destination's activated audiences.
func (d *Destination) HasAudience(id string) bool {
	for _, a := range d.Audiences {
		if a == id {
			return true
		}
	}
	return false
}
