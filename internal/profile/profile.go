package profile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Well-known identity namespaces. Namespace names are matched case-insensitively
// for these two and reported in this canonical spelling.
const (
	NamespaceEmail = "Email"
	NamespaceECID  = "ECID"
)

// Membership statuses accepted in segmentMembership.ups.
const (
	StatusRealized = "realized"
	StatusExisting = "existing"
	StatusExited   = "exited"
)

// Limits bounds the size and shape of one profile. A zero or negative field means
// its default (see DefaultLimits).
type Limits struct {
	MaxDepth        int // nesting depth of objects/arrays in the profile (default 16)
	MaxStringLength int // bytes of any string value or key (default 4096)
	// MaxAttributes bounds the total number of keys across the whole profile, all depths
	// (default 500), except the keys each audience of segmentMembership.ups needs (its
	// ID, status and lastQualificationTime), which MaxAudiences bounds instead.
	MaxAttributes int
	MaxIdentities int // total identity entries across identityMap (default 50)
	MaxAudiences  int // entries in segmentMembership.ups (default 1000)
}

// DefaultLimits returns the limits of BRIEF §3.
func DefaultLimits() Limits {
	return Limits{
		MaxDepth:        16,
		MaxStringLength: 4096,
		MaxAttributes:   500,
		MaxIdentities:   50,
		MaxAudiences:    1000,
	}
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxDepth <= 0 {
		l.MaxDepth = d.MaxDepth
	}
	if l.MaxStringLength <= 0 {
		l.MaxStringLength = d.MaxStringLength
	}
	if l.MaxAttributes <= 0 {
		l.MaxAttributes = d.MaxAttributes
	}
	if l.MaxIdentities <= 0 {
		l.MaxIdentities = d.MaxIdentities
	}
	if l.MaxAudiences <= 0 {
		l.MaxAudiences = d.MaxAudiences
	}
	return l
}

// Identity is one supported identity of a profile. Namespace is as given, except
// that Email and ECID are spelled canonically; an Email ID is lower-cased.
type Identity struct{ Namespace, ID string }

// Membership is one entry of segmentMembership.ups.
type Membership struct {
	AudienceID            string
	Status                string // realized | existing | exited
	LastQualificationTime time.Time
}

// Profile is a validated profile.
type Profile struct {
	Raw         json.RawMessage // the profile object's bytes as received (valid JSON, not re-encoded; a copy)
	Identities  []Identity      // supported identities only, document order within a namespace, namespaces sorted
	Memberships []Membership    // segmentMembership.ups, sorted by AudienceID
}

// Key returns a stable, non-PII key for the profile, used as the Kafka message key:
// the first 32 hex characters of the SHA-256 of
//   - the first Email identity (lower-cased), else
//   - "ECID:" + the first ECID, else
//   - namespace + ":" + first ID of the lexicographically first custom namespace.
//
// It returns "" for a profile without identities (Parse never returns one).
func (p *Profile) Key() string {
	var src string
	var ecid, custom *Identity
	for i := range p.Identities {
		id := &p.Identities[i]
		switch id.Namespace {
		case NamespaceEmail:
			if src == "" {
				src = id.ID
			}
		case NamespaceECID:
			if ecid == nil {
				ecid = id
			}
		default:
			// Identities are sorted by namespace, so the first custom one is the
			// lexicographically first namespace's first ID.
			if custom == nil {
				custom = id
			}
		}
	}
	switch {
	case src != "":
	case ecid != nil:
		src = "ECID:" + ecid.ID
	case custom != nil:
		src = custom.Namespace + ":" + custom.ID
	default:
		return ""
	}
	sum := sha256.Sum256([]byte(src))
	return hex.EncodeToString(sum[:16])
}
