package destination

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/fault"
	"github.com/qgate/qgate/internal/qualtrics"
)

// Request is the body of POST /v1/destinations and PATCH /v1/destinations/{id}. Every field is
// a pointer: absent (or null) leaves the field as it is on PATCH, or at its default on create.
type Request struct {
	Name               *string             `json:"name"`
	Description        *string             `json:"description"`
	URL                *string             `json:"url"`
	Username           *string             `json:"username"`
	APIToken           *string             `json:"apiToken"`
	IdentityMappings   *[]IdentityMapping  `json:"identityMappings"`
	AttributeMappings  *[]AttributeMapping `json:"attributeMappings"`
	Audiences          *[]string           `json:"audiences"`
	ConsentPolicy      *ConsentPolicy      `json:"consentPolicy"`
	RateLimitPerMinute *int                `json:"rateLimitPerMinute"`
	Enabled            *bool               `json:"enabled"`
	Paused             *bool               `json:"paused"`
	// Version, on PATCH, is the version the change was based on (like If-Match).
	Version *int64 `json:"version"`
}

// Limits of the validation rules.
const (
	MaxNameLen          = 200
	MaxDescriptionLen   = 2000
	MaxUsernameLen      = 200
	MinTokenLen         = 8
	MaxTokenLen         = 1000
	MaxNamespaceLen     = 100
	MaxAttributeSources = 500 // characters of a source path
	MaxAttributeTarget  = 100
	MaxAttributeCount   = 200
	MaxAudienceLen      = 200
	MaxAudienceCount    = 1000
	MaxURLLen           = 2048
)

// ReservedTargets are payload keys an attribute mapping may not write: the router puts the
// mapped identities and the routed audiences there.
var ReservedTargets = []string{"identityMap", "segmentMembership"}

// Defaults returns a destination with every default set (enabled, rate limit 3000, no
// attribute mappings).
func Defaults() Destination {
	return Destination{
		RateLimitPerMinute: DefaultRateLimitPerMinute,
		Enabled:            true,
		AttributeMappings:  []AttributeMapping{},
		ConsentPolicy:      ConsentPolicy{Require: []string{}},
	}
}

// Apply returns base with the request's present fields written over it. The token is not
// applied: it is sealed separately.
func (r *Request) Apply(base Destination) Destination {
	d := base
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = *v
		}
	}
	set(&d.Name, r.Name)
	set(&d.Description, r.Description)
	set(&d.URL, r.URL)
	set(&d.Username, r.Username)
	if r.IdentityMappings != nil {
		d.IdentityMappings = append([]IdentityMapping{}, *r.IdentityMappings...)
	}
	if r.AttributeMappings != nil {
		d.AttributeMappings = append([]AttributeMapping{}, *r.AttributeMappings...)
	}
	if r.Audiences != nil {
		d.Audiences = append([]string{}, *r.Audiences...)
	}
	if r.ConsentPolicy != nil {
		d.ConsentPolicy = ConsentPolicy{Require: append([]string{}, r.ConsentPolicy.Require...)}
	}
	if r.RateLimitPerMinute != nil {
		d.RateLimitPerMinute = *r.RateLimitPerMinute
	}
	if r.Enabled != nil {
		d.Enabled = *r.Enabled
	}
	if r.Paused != nil {
		d.Paused = *r.Paused
	}
	return d
}

// Validate checks the destination that results from applying r to current (nil: a new
// destination, from Defaults) and returns every problem at once, each naming its JSON path.
// The apiToken is required when current is nil. Name uniqueness is the store's to check.
func (r *Request) Validate(policy qualtrics.HostPolicy, current *Destination) []fault.Problem {
	base := Defaults()
	if current != nil {
		base = *current
	}
	d := r.Apply(base)
	problems := d.Validate(policy)
	switch {
	case r.APIToken == nil && current == nil:
		problems = append(problems, fault.Problem{Path: "apiToken", Code: "required", Message: "this field is required"})
	case r.APIToken != nil:
		problems = append(problems, checkToken(*r.APIToken)...)
	}
	return problems
}

// spec holds the rules the shared validator expresses well; the rest are written by hand.
type spec struct {
	Name               string   `json:"name" validate:"required,max=200"`
	Description        string   `json:"description" validate:"max=2000"`
	URL                string   `json:"url" validate:"required,max=2048"`
	Username           string   `json:"username" validate:"required,max=200"`
	Audiences          []string `json:"audiences" validate:"min=1,max=1000,dive,required,max=200"`
	RateLimitPerMinute int      `json:"rateLimitPerMinute" validate:"min=1,max=3000"`
}

// Validate checks every rule of a destination's configuration (not its token) and returns
// every problem, in field order.
func (d *Destination) Validate(policy qualtrics.HostPolicy) []fault.Problem {
	var problems []fault.Problem
	add := func(path, code, msg string) {
		problems = append(problems, fault.Problem{Path: path, Code: code, Message: msg})
	}
	s := spec{Name: d.Name, Description: d.Description, URL: d.URL, Username: d.Username,
		Audiences: d.Audiences, RateLimitPerMinute: d.RateLimitPerMinute}
	byPath := map[string][]fault.Problem{}
	reported := map[string]bool{}
	if err := api.ValidateStruct(&s); err != nil {
		var fe *fault.Error
		if !errors.As(err, &fe) {
			add("", "invalid", err.Error())
			return problems
		}
		for _, p := range fe.Problems {
			if p.Path == "audiences" && p.Code == "too_small" {
				p.Code, p.Message = "required", "give at least one audience ID"
			}
			byPath[fieldOf(p.Path)] = append(byPath[fieldOf(p.Path)], p)
			reported[p.Path] = true
		}
	}
	tagged := func(field string) bool {
		problems = append(problems, byPath[field]...)
		return len(byPath[field]) > 0
	}

	// name
	if !tagged("name") {
		if strings.TrimSpace(d.Name) == "" {
			add("name", "required", "this field is required")
		} else if hasControl(d.Name) {
			add("name", "invalid_characters", "must not contain control characters")
		}
	}
	tagged("description")

	// url
	if !tagged("url") {
		if err := policy.CheckURL(d.URL); err != nil {
			add("url", "url_not_allowed", reason(err))
		}
	}

	// username: Basic auth splits "username:token" at the first colon.
	if !tagged("username") {
		if strings.Contains(d.Username, ":") {
			add("username", "invalid_username", "must not contain ':' (it separates username and token in Basic auth)")
		} else if hasControl(d.Username) || strings.TrimSpace(d.Username) == "" {
			add("username", "invalid_username", "must be printable and not blank")
		}
	}

	problems = append(problems, checkIdentityMappings(d.IdentityMappings)...)
	problems = append(problems, checkAttributeMappings(d.AttributeMappings)...)

	// audiences
	if !tagged("audiences") || !reported["audiences"] {
		seen := map[string]int{}
		for i, a := range d.Audiences {
			path := fmt.Sprintf("audiences[%d]", i)
			if reported[path] {
				continue
			}
			if strings.TrimSpace(a) == "" || hasControl(a) {
				add(path, "invalid_audience", "must be a segment ID: not blank, no control characters")
				continue
			}
			if j, dup := seen[a]; dup {
				add(path, "duplicate_audience", fmt.Sprintf("audience %q is already listed at audiences[%d]", a, j))
				continue
			}
			seen[a] = i
		}
	}
	problems = append(problems, checkConsentPolicy(d.ConsentPolicy)...)
	tagged("rateLimitPerMinute")
	return problems
}

// fieldOf returns the top-level field of a path: "audiences[2]" → "audiences".
func fieldOf(path string) string {
	if i := strings.IndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return path
}

func checkToken(tok string) []fault.Problem {
	p := func(code, msg string) []fault.Problem {
		return []fault.Problem{{Path: "apiToken", Code: code, Message: msg}}
	}
	switch {
	case tok == "":
		return p("required", "this field is required")
	case utf8.RuneCountInString(tok) < MinTokenLen:
		return p("too_small", fmt.Sprintf("must be at least %d characters", MinTokenLen))
	case len(tok) > MaxTokenLen:
		return p("too_large", fmt.Sprintf("must be at most %d characters", MaxTokenLen))
	case hasControl(tok) || strings.ContainsAny(tok, " \t"):
		return p("invalid_token", "must not contain spaces or control characters")
	}
	return nil
}

// unsupportedNamespaces are standard identity namespaces that cannot map to external_id (the
// same list the profile validation ignores).
var unsupportedNamespaces = []string{"Phone", "Phone_E.164", "AdCloud", "AAID", "TNTID", "IDFA", "GAID", "GCLID", "WAID"}

func checkIdentityMappings(ms []IdentityMapping) []fault.Problem {
	var problems []fault.Problem
	add := func(path, code, msg string) {
		problems = append(problems, fault.Problem{Path: path, Code: code, Message: msg})
	}
	if len(ms) == 0 {
		add("identityMappings", "required", `give at least one identity mapping: {"source":"Email","target":"email"} and/or {"source":"ECID" or a custom namespace,"target":"external_id"}`)
		return problems
	}
	targets := map[string]int{}
	for i, m := range ms {
		src, tgt := fmt.Sprintf("identityMappings[%d].source", i), fmt.Sprintf("identityMappings[%d].target", i)
		isEmail := strings.EqualFold(m.Source, "Email")
		switch {
		case m.Source == "":
			add(src, "required", "this field is required")
		case utf8.RuneCountInString(m.Source) > MaxNamespaceLen:
			add(src, "too_large", fmt.Sprintf("must be at most %d characters", MaxNamespaceLen))
		case !validNamespace(m.Source):
			add(src, "invalid_namespace", "an identity namespace is letters, digits, '_', '.' and '-'")
		case isHashedNamespace(m.Source):
			add(src, "hashed_namespace", fmt.Sprintf("namespace %q holds hashed identities; Qualtrics takes only plaintext emails and external IDs", m.Source))
		case unsupportedNamespace(m.Source):
			add(src, "unsupported_namespace", fmt.Sprintf("namespace %q cannot map to external_id; use ECID or a custom namespace", m.Source))
		}
		switch m.Target {
		case "":
			add(tgt, "required", "this field is required")
			continue
		case TargetEmail:
			if m.Source != "" && !isEmail {
				add(tgt, "email_source_mismatch", "only the Email namespace maps to email")
			}
		case TargetExternalID:
			if isEmail {
				add(tgt, "email_source_mismatch", "the Email namespace maps to email, not external_id")
			}
		default:
			add(tgt, "unsupported_target", "must be email or external_id")
			continue
		}
		if j, dup := targets[m.Target]; dup {
			add(tgt, "duplicate_target", fmt.Sprintf("target %s is already mapped at identityMappings[%d]", m.Target, j))
			continue
		}
		targets[m.Target] = i
	}
	return problems
}

func checkAttributeMappings(ms []AttributeMapping) []fault.Problem {
	var problems []fault.Problem
	add := func(path, code, msg string) {
		problems = append(problems, fault.Problem{Path: path, Code: code, Message: msg})
	}
	if len(ms) > MaxAttributeCount {
		add("attributeMappings", "too_large", fmt.Sprintf("at most %d attribute mappings", MaxAttributeCount))
		return problems
	}
	targets := map[string]int{}
	for i, m := range ms {
		src, tgt := fmt.Sprintf("attributeMappings[%d].source", i), fmt.Sprintf("attributeMappings[%d].target", i)
		switch {
		case m.Source == "":
			add(src, "required", "this field is required")
		case len(m.Source) > MaxAttributeSources:
			add(src, "too_large", fmt.Sprintf("must be at most %d characters", MaxAttributeSources))
		case !validSourcePath(m.Source):
			add(src, "invalid_source", "must be a dotted path of camelCase names, such as person.name.firstName")
		case isReserved(fieldOf(m.Source)):
			add(src, "reserved_source", fmt.Sprintf("%s is not an attribute: identities come from identityMappings and audiences from audiences", fieldOf(m.Source)))
		}
		switch {
		case m.Target == "":
			add(tgt, "required", "this field is required")
			continue
		case len(m.Target) > MaxAttributeTarget:
			add(tgt, "too_large", fmt.Sprintf("must be at most %d characters", MaxAttributeTarget))
			continue
		case !camelCase(m.Target):
			add(tgt, "invalid_target", "must be camelCase: ^[a-z][a-zA-Z0-9]*$")
			continue
		case isReserved(m.Target):
			add(tgt, "reserved_target", fmt.Sprintf("%s is written by qgate itself; choose another target", m.Target))
			continue
		}
		if j, dup := targets[m.Target]; dup {
			add(tgt, "duplicate_target", fmt.Sprintf("target %s is already mapped at attributeMappings[%d]", m.Target, j))
			continue
		}
		targets[m.Target] = i
	}
	return problems
}

func isReserved(key string) bool {
	for _, r := range ReservedTargets {
		if key == r {
			return true
		}
	}
	return false
}

// camelCase reports whether s matches ^[a-z][a-zA-Z0-9]*$.
func camelCase(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func validSourcePath(s string) bool {
	for seg := range strings.SplitSeq(s, ".") {
		if !camelCase(seg) {
			return false
		}
	}
	return true
}

func validNamespace(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// isHashedNamespace reports whether an underscore-separated part of ns is SHA<digits> or MD5
// (case-insensitive), as in Email_LC_SHA256 or Phone_SHA256_E.164.
func isHashedNamespace(ns string) bool {
	for part := range strings.SplitSeq(ns, "_") {
		if strings.EqualFold(part, "MD5") {
			return true
		}
		if len(part) > 3 && strings.EqualFold(part[:3], "SHA") && strings.Trim(part[3:], "0123456789") == "" {
			return true
		}
	}
	return false
}

func unsupportedNamespace(ns string) bool {
	for _, u := range unsupportedNamespaces {
		if strings.EqualFold(ns, u) {
			return true
		}
	}
	return false
}

func hasControl(s string) bool {
	return strings.ContainsFunc(s, unicode.IsControl)
}

// reason returns the operator-facing reason of a URL refusal, without the sentinel's prefix.
func reason(err error) string {
	msg := err.Error()
	if r, ok := strings.CutPrefix(msg, qualtrics.ErrURLNotAllowed.Error()+": "); ok {
		return r
	}
	return msg
}
