package notify

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/qgate/qgate/internal/fault"
	"github.com/qgate/qgate/internal/qualtrics"
)

// Channel kinds.
const (
	KindWebhook = "webhook"
	KindSlack   = "slack"
	KindTeams   = "teams"
)

// Kinds lists every channel kind.
var Kinds = []string{KindWebhook, KindSlack, KindTeams}

// Channel is where notifications go: a webhook (JSON body, Standard Webhooks signature), a
// Slack or a Teams incoming webhook (a readable message with the same links).
type Channel struct {
	ID            string    `json:"id"`
	Name          string    `json:"name"`
	Kind          string    `json:"kind"`
	URL           string    `json:"url"`
	Secret        string    `json:"-"`
	Sealed        []byte    `json:"-"`
	SecretEnd     string    `json:"secretLast4"`
	Events        []string  `json:"events"`
	ConnectionIDs []string  `json:"connectionIds"`
	Version       int64     `json:"version"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

// Wants reports whether the channel takes m.
func (c Channel) Wants(m Message) bool {
	if !slices.Contains(c.Events, m.Type) {
		return false
	}
	return len(c.ConnectionIDs) == 0 || slices.Contains(c.ConnectionIDs, m.ConnectionID)
}

// ChannelRequest is the body of POST /v1/notification-channels and PATCH …/{id}.
type ChannelRequest struct {
	Name          *string   `json:"name"`
	Kind          *string   `json:"kind"`
	URL           *string   `json:"url"`
	Secret        *string   `json:"secret"`
	Events        *[]string `json:"events"`
	ConnectionIDs *[]string `json:"connectionIds"`
	Version       *int64    `json:"version"`
}

// Apply returns base with the present fields written over it (not the secret).
func (r *ChannelRequest) Apply(base Channel) Channel {
	c := base
	if r.Name != nil {
		c.Name = *r.Name
	}
	if r.Kind != nil {
		c.Kind = *r.Kind
	}
	if r.URL != nil {
		c.URL = *r.URL
	}
	if r.Events != nil {
		c.Events = append([]string{}, *r.Events...)
	}
	if r.ConnectionIDs != nil {
		c.ConnectionIDs = append([]string{}, *r.ConnectionIDs...)
	}
	return c
}

// CheckURL applies the SSRF guard to a channel URL: https (http only with
// QGATE_ALLOW_PRIVATE_NETWORKS), no credentials, no private, loopback or link-local literal
// unless allowed, and the dial-time check on every connection. The Qualtrics host allow-list
// does not apply: channels are Slack, Teams or the customer's own receivers.
func CheckURL(policy qualtrics.HostPolicy, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Hostname() == "" {
		return fmt.Errorf("%w: must be an absolute https URL", qualtrics.ErrURLNotAllowed)
	}
	return qualtrics.HostPolicy{AllowedHosts: []string{u.Hostname()}, AllowPrivate: policy.AllowPrivate}.CheckURL(raw)
}

// Validate checks the channel that results from applying r to current (nil: new) and returns
// every problem. A webhook channel needs a secret.
func (r *ChannelRequest) Validate(policy qualtrics.HostPolicy, current *Channel) []fault.Problem {
	base := Channel{Kind: KindWebhook}
	if current != nil {
		base = *current
	}
	c := r.Apply(base)
	var problems []fault.Problem
	add := func(path, code, msg string) {
		problems = append(problems, fault.Problem{Path: path, Code: code, Message: msg})
	}
	switch {
	case strings.TrimSpace(c.Name) == "":
		add("name", "required", "this field is required")
	case utf8.RuneCountInString(c.Name) > 200:
		add("name", "too_large", "must be at most 200 characters")
	case strings.ContainsFunc(c.Name, unicode.IsControl):
		add("name", "invalid_characters", "must not contain control characters")
	}
	if !slices.Contains(Kinds, c.Kind) {
		add("kind", "invalid_kind", "must be one of "+strings.Join(Kinds, ", "))
	}
	if current != nil && r.Kind != nil && *r.Kind != current.Kind {
		add("kind", "immutable", "the kind of a channel cannot change; create another channel")
	}
	switch {
	case c.URL == "":
		add("url", "required", "this field is required")
	case len(c.URL) > 2048:
		add("url", "too_large", "must be at most 2048 characters")
	default:
		if err := CheckURL(policy, c.URL); err != nil {
			add("url", "url_not_allowed", strings.TrimPrefix(err.Error(), qualtrics.ErrURLNotAllowed.Error()+": "))
		}
	}
	if r.Secret != nil {
		if _, err := DecodeSecret(*r.Secret); err != nil {
			add("secret", "invalid_secret", ErrSecret.Error())
		}
	} else if c.Kind == KindWebhook && (current == nil || len(current.Sealed) == 0) {
		add("secret", "required", "a webhook channel needs a secret: whsec_ and the base64 of 24 to 64 random bytes")
	}
	if len(c.Events) == 0 {
		add("events", "required", "give at least one of "+strings.Join(Types, ", "))
	}
	seen := map[string]bool{}
	for i, e := range c.Events {
		p := fmt.Sprintf("events[%d]", i)
		switch {
		case !slices.Contains(Types, e):
			add(p, "invalid_event", "must be one of "+strings.Join(Types, ", "))
		case seen[e]:
			add(p, "duplicate_event", e+" is already listed")
		}
		seen[e] = true
	}
	if len(c.ConnectionIDs) > 100 {
		add("connectionIds", "too_large", "at most 100 connections")
	}
	for i, id := range c.ConnectionIDs {
		if !strings.HasPrefix(id, "svc_") || len(id) > 100 {
			add(fmt.Sprintf("connectionIds[%d]", i), "invalid_connection_id", "must be a survey connection ID (svc_…)")
		}
	}
	return problems
}
