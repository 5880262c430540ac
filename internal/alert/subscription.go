package alert

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/qgate/qgate/internal/fault"
	"github.com/qgate/qgate/internal/notify"
	"github.com/qgate/qgate/internal/qualtrics"
)

// Subscription is an operator's alert webhook: where alerts go, signed with its secret, and
// which events (of which destinations: none listed means all) it wants.
type Subscription struct {
	ID             string    `json:"id"`
	Name           string    `json:"name"`
	URL            string    `json:"url"`
	SecretEnd      string    `json:"secretLast4"`
	Events         []Rule    `json:"events"`
	DestinationIDs []string  `json:"destinationIds"`
	Enabled        bool      `json:"enabled"`
	Version        int64     `json:"version"`
	CreatedAt      time.Time `json:"createdAt"`
	UpdatedAt      time.Time `json:"updatedAt"`

	// Sealed is the AES-GCM ciphertext of the whsec_ secret; the plaintext is never stored,
	// returned or logged.
	Sealed []byte `json:"-"`
}

// Wants returns the subscription's rule for event about destID, if it wants it
// (survey.syncFailed is about a survey connection: the destination filter does not apply).
func (s Subscription) Wants(event, destID string) (Rule, bool) {
	if !s.Enabled {
		return Rule{}, false
	}
	if len(s.DestinationIDs) > 0 && event != EventSurveySyncFailed && !contains(s.DestinationIDs, destID) {
		return Rule{}, false
	}
	for _, r := range s.Events {
		if r.Type == event {
			return r, true
		}
	}
	return Rule{}, false
}

func contains(l []string, v string) bool {
	for _, x := range l {
		if x == v {
			return true
		}
	}
	return false
}

// Request is the body of POST /v1/alert-subscriptions and PATCH …/{id}: absent (or null)
// fields stay as they are on PATCH.
type Request struct {
	Name           *string   `json:"name"`
	URL            *string   `json:"url"`
	Secret         *string   `json:"secret"`
	Events         *[]Rule   `json:"events"`
	DestinationIDs *[]string `json:"destinationIds"`
	Enabled        *bool     `json:"enabled"`
	// Version, on PATCH, is the version the change is based on (like If-Match).
	Version *int64 `json:"version"`
}

// Apply returns base with the present fields written over it (not the secret), defaults
// filled in.
func (r *Request) Apply(base Subscription) Subscription {
	s := base
	if r.Name != nil {
		s.Name = *r.Name
	}
	if r.URL != nil {
		s.URL = *r.URL
	}
	if r.Events != nil {
		s.Events = make([]Rule, len(*r.Events))
		for i, e := range *r.Events {
			s.Events[i] = e.withDefaults()
		}
	}
	if r.DestinationIDs != nil {
		s.DestinationIDs = append([]string{}, *r.DestinationIDs...)
	}
	if r.Enabled != nil {
		s.Enabled = *r.Enabled
	}
	if s.DestinationIDs == nil {
		s.DestinationIDs = []string{}
	}
	if s.Events == nil {
		s.Events = []Rule{}
	}
	return s
}

// MaxDestinationIDs bounds a subscription's destination filter.
const MaxDestinationIDs = 100

// Validate checks the subscription that results from applying r to current (nil: new) and
// returns every problem, each naming its JSON path. The URL follows the same SSRF rules as
// notification channels (https, no private or loopback addresses unless
// QGATE_ALLOW_PRIVATE_NETWORKS); the secret is required on create.
func (r *Request) Validate(policy qualtrics.HostPolicy, current *Subscription) []fault.Problem {
	base := Subscription{Enabled: true}
	if current != nil {
		base = *current
	}
	s := r.Apply(base)
	var problems []fault.Problem
	add := func(path, code, msg string) {
		problems = append(problems, fault.Problem{Path: path, Code: code, Message: msg})
	}
	switch {
	case strings.TrimSpace(s.Name) == "":
		add("name", "required", "this field is required")
	case utf8.RuneCountInString(s.Name) > 200:
		add("name", "too_large", "must be at most 200 characters")
	case strings.ContainsFunc(s.Name, unicode.IsControl):
		add("name", "invalid_characters", "must not contain control characters")
	}
	switch {
	case s.URL == "":
		add("url", "required", "this field is required")
	case len(s.URL) > 2048:
		add("url", "too_large", "must be at most 2048 characters")
	default:
		if err := notify.CheckURL(policy, s.URL); err != nil {
			add("url", "url_not_allowed", strings.TrimPrefix(err.Error(), qualtrics.ErrURLNotAllowed.Error()+": "))
		}
	}
	switch {
	case r.Secret != nil:
		if _, err := notify.DecodeSecret(*r.Secret); err != nil {
			add("secret", "invalid_secret", notify.ErrSecret.Error())
		}
	case current == nil:
		add("secret", "required", "give the webhook secret: whsec_ and the base64 of 24 to 64 random bytes")
	}
	var given []Rule
	if r.Events != nil {
		given = *r.Events
	}
	problems = append(problems, checkRules(s.Events, given)...)
	if len(s.DestinationIDs) > MaxDestinationIDs {
		add("destinationIds", "too_large", fmt.Sprintf("at most %d destinations", MaxDestinationIDs))
	}
	for i, id := range s.DestinationIDs {
		if !(strings.HasPrefix(id, "dst_") || strings.HasPrefix(id, "nch_")) || len(id) > 100 {
			add(fmt.Sprintf("destinationIds[%d]", i), "invalid_destination_id", "must be a destination ID (dst_…) or a notification channel's (nch_…)")
		}
	}
	return problems
}
