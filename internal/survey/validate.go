package survey

import (
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/qgate/qgate/internal/fault"
	"github.com/qgate/qgate/internal/qualtrics"
)

// ConnectionRequest is the body of POST /v1/survey-connections and PATCH …/{id}. Absent (or
// null) fields keep their value on PATCH, or their default on create.
type ConnectionRequest struct {
	Name     *string `json:"name"`
	BaseURL  *string `json:"baseUrl"`
	APIToken *string `json:"apiToken"`
	// EventsKey (write-only, 16 to 200 characters; "" removes it) authenticates Qualtrics'
	// event-subscription posts to POST …/{id}/events?key=….
	EventsKey        *string   `json:"eventsKey"`
	IncrementalEvery *Duration `json:"incrementalEvery"`
	FullEvery        *Duration `json:"fullEvery"`
	ExpiryLead       *Duration `json:"expiryLead"`
	// LowCompletionBelow and BounceRateAbove are ratios from 0 (off) to 1.
	LowCompletionBelow *float64 `json:"lowCompletionBelow"`
	BounceRateAbove    *float64 `json:"bounceRateAbove"`
	// Version, on PATCH, is the version the change was based on.
	Version *int64 `json:"version"`
}

// Limits of the validation rules.
const (
	MaxNameLen          = 200
	MinTokenLen         = 8
	MaxTokenLen         = 1000
	MinIncrementalEvery = time.Minute
	MaxIncrementalEvery = 24 * time.Hour
	MaxFullEvery        = 7 * 24 * time.Hour
	MinExpiryLead       = time.Hour
	MaxExpiryLead       = 30 * 24 * time.Hour
	apiPath             = "/API/v3/"
)

// connectionDefaults returns a connection with the default schedule.
func connectionDefaults() Connection {
	return Connection{
		IncrementalEvery: Duration(DefaultIncrementalEvery),
		FullEvery:        Duration(DefaultFullEvery),
		ExpiryLead:       Duration(DefaultExpiryLead),
	}
}

// Apply returns base with the request's present fields written over it (not the token).
func (r *ConnectionRequest) Apply(base Connection) Connection {
	c := base
	if r.Name != nil {
		c.Name = *r.Name
	}
	if r.BaseURL != nil {
		c.BaseURL = NormalizeBaseURL(*r.BaseURL)
	}
	if r.IncrementalEvery != nil {
		c.IncrementalEvery = *r.IncrementalEvery
	}
	if r.FullEvery != nil {
		c.FullEvery = *r.FullEvery
	}
	if r.ExpiryLead != nil {
		c.ExpiryLead = *r.ExpiryLead
	}
	if r.LowCompletionBelow != nil {
		c.LowCompletionBelow = *r.LowCompletionBelow
	}
	if r.BounceRateAbove != nil {
		c.BounceRateAbove = *r.BounceRateAbove
	}
	return c
}

// NormalizeBaseURL adds the trailing slash of ".../API/v3".
func NormalizeBaseURL(s string) string {
	if strings.HasSuffix(s, "/API/v3") {
		return s + "/"
	}
	return s
}

// Validate checks the connection that results from applying r to current (nil: a new one)
// and returns every problem, each naming its JSON path. The token is required on create.
func (r *ConnectionRequest) Validate(policy qualtrics.HostPolicy, current *Connection) []fault.Problem {
	base := connectionDefaults()
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
	case utf8.RuneCountInString(c.Name) > MaxNameLen:
		add("name", "too_large", fmt.Sprintf("must be at most %d characters", MaxNameLen))
	case strings.ContainsFunc(c.Name, unicode.IsControl):
		add("name", "invalid_characters", "must not contain control characters")
	}
	if c.BaseURL == "" {
		add("baseUrl", "required", "this field is required")
	} else if err := policy.CheckURL(c.BaseURL); err != nil {
		add("baseUrl", "url_not_allowed", strings.TrimPrefix(err.Error(), qualtrics.ErrURLNotAllowed.Error()+": "))
	} else if u, _ := url.Parse(c.BaseURL); u.Path != apiPath || u.RawQuery != "" || u.Fragment != "" {
		add("baseUrl", "invalid_base_url", "must be the API v3 base URL, such as https://iad1.qualtrics.com/API/v3/")
	}
	switch {
	case r.APIToken == nil && current == nil:
		add("apiToken", "required", "this field is required")
	case r.APIToken != nil:
		tok := *r.APIToken
		switch {
		case utf8.RuneCountInString(tok) < MinTokenLen:
			add("apiToken", "too_small", fmt.Sprintf("must be at least %d characters", MinTokenLen))
		case len(tok) > MaxTokenLen:
			add("apiToken", "too_large", fmt.Sprintf("must be at most %d characters", MaxTokenLen))
		case strings.ContainsFunc(tok, func(r rune) bool { return unicode.IsControl(r) || unicode.IsSpace(r) }):
			add("apiToken", "invalid_token", "must not contain spaces or control characters")
		}
	}
	if r.EventsKey != nil && *r.EventsKey != "" {
		k := *r.EventsKey
		switch {
		case len(k) < 16 || len(k) > 200:
			add("eventsKey", "out_of_range", "must be 16 to 200 characters (or \"\" to remove it)")
		case strings.Trim(k, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~") != "":
			add("eventsKey", "invalid_characters", "use letters, digits and -_.~ only (it travels in a URL)")
		}
	}
	inc, full, lead := c.IncrementalEvery.D(), c.FullEvery.D(), c.ExpiryLead.D()
	if inc < MinIncrementalEvery || inc > MaxIncrementalEvery {
		add("incrementalEvery", "out_of_range", fmt.Sprintf("must be from %s to %s", MinIncrementalEvery, MaxIncrementalEvery))
	}
	switch {
	case full > MaxFullEvery:
		add("fullEvery", "out_of_range", fmt.Sprintf("must be at most %s", MaxFullEvery))
	case full < inc:
		add("fullEvery", "out_of_range", "must be at least incrementalEvery")
	}
	if lead < MinExpiryLead || lead > MaxExpiryLead {
		add("expiryLead", "out_of_range", fmt.Sprintf("must be from %s to %s", MinExpiryLead, MaxExpiryLead))
	}
	for _, f := range []struct {
		path string
		v    float64
	}{{"lowCompletionBelow", c.LowCompletionBelow}, {"bounceRateAbove", c.BounceRateAbove}} {
		if !(f.v >= 0 && f.v <= 1) {
			add(f.path, "out_of_range", "must be a ratio from 0 (off) to 1")
		}
	}
	return problems
}
