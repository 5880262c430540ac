package alert

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/qgate/qgate/internal/fault"
)

// Event types a subscription may want.
const (
	EventCircuitOpened        = "circuit.opened"
	EventCircuitClosed        = "circuit.closed"
	EventDestinationAuth      = "destination.auth"
	EventDeadLettersThreshold = "deadletters.threshold"
	EventFailureRate          = "failure.rate"
	EventBacklogAge           = "backlog.age"
)

// Events lists every event type.
var Events = []string{EventCircuitOpened, EventCircuitClosed, EventDestinationAuth, EventDeadLettersThreshold, EventFailureRate, EventBacklogAge, EventSurveySyncFailed}

// Rule is one wanted event and, for the threshold events, its parameters. Durations are Go
// duration strings ("90s", "15m", "2h").
type Rule struct {
	Type string `json:"type"`
	// deadletters.threshold: at least Count dead letters in Window.
	Count int `json:"count,omitempty"`
	// deadletters.threshold and failure.rate: the sliding window.
	Window string `json:"window,omitempty"`
	// failure.rate: at least Rate (0–1] of the attempts in Window failed, once there were at
	// least MinAttempts.
	Rate        float64 `json:"rate,omitempty"`
	MinAttempts int     `json:"minAttempts,omitempty"`
	// backlog.age: the oldest waiting delivery is older than OlderThan.
	OlderThan string `json:"olderThan,omitempty"`
}

// Defaults of the threshold rules.
const (
	DefaultDeadLetterCount = 10
	DefaultWindow          = "15m"
	DefaultFailureRate     = 0.5
	DefaultMinAttempts     = 20
	DefaultBacklogAge      = "30m"
	MinWindow              = time.Second
	MaxWindow              = 7 * 24 * time.Hour
)

// withDefaults returns r with the defaults of its type filled in and the parameters of other
// types cleared.
func (r Rule) withDefaults() Rule {
	out := Rule{Type: r.Type}
	switch r.Type {
	case EventDeadLettersThreshold:
		out.Count, out.Window = r.Count, r.Window
		if out.Count == 0 {
			out.Count = DefaultDeadLetterCount
		}
		if out.Window == "" {
			out.Window = DefaultWindow
		}
	case EventFailureRate:
		out.Rate, out.MinAttempts, out.Window = r.Rate, r.MinAttempts, r.Window
		if out.Rate == 0 {
			out.Rate = DefaultFailureRate
		}
		if out.MinAttempts == 0 {
			out.MinAttempts = DefaultMinAttempts
		}
		if out.Window == "" {
			out.Window = DefaultWindow
		}
	case EventBacklogAge:
		out.OlderThan = r.OlderThan
		if out.OlderThan == "" {
			out.OlderThan = DefaultBacklogAge
		}
	}
	return out
}

// duration parses one of the rule's duration fields (validated already).
func duration(s string) time.Duration {
	d, _ := time.ParseDuration(s)
	return d
}

func checkDuration(path, v string, add func(path, code, msg string)) {
	d, err := time.ParseDuration(v)
	switch {
	case err != nil:
		add(path, "invalid_duration", `must be a duration such as "90s", "15m" or "2h"`)
	case d < MinWindow || d > MaxWindow:
		add(path, "invalid_duration", "must be between 1s and 168h")
	}
}

// checkRules validates a subscription's events (with defaults applied) and returns every
// problem.
func checkRules(rules []Rule, given []Rule) []fault.Problem {
	var problems []fault.Problem
	add := func(path, code, msg string) {
		problems = append(problems, fault.Problem{Path: path, Code: code, Message: msg})
	}
	if len(rules) == 0 {
		add("events", "required", "give at least one event: "+strings.Join(Events, ", "))
		return problems
	}
	seen := map[string]int{}
	for i, r := range rules {
		p := fmt.Sprintf("events[%d]", i)
		g := Rule{}
		if i < len(given) {
			g = given[i]
		}
		if !slices.Contains(Events, r.Type) {
			add(p+".type", "invalid_event", "must be one of "+strings.Join(Events, ", "))
			continue
		}
		if j, dup := seen[r.Type]; dup {
			add(p+".type", "duplicate_event", fmt.Sprintf("%s is already listed at events[%d]", r.Type, j))
			continue
		}
		seen[r.Type] = i
		// Parameters of another type are refused rather than ignored.
		extra := func(field string, set bool) {
			if set {
				add(p+"."+field, "unknown_field", field+" does not apply to "+r.Type)
			}
		}
		switch r.Type {
		case EventDeadLettersThreshold:
			if r.Count < 1 || r.Count > 1_000_000 {
				add(p+".count", "invalid_count", "must be between 1 and 1000000")
			}
			checkDuration(p+".window", r.Window, add)
			extra("rate", g.Rate != 0)
			extra("minAttempts", g.MinAttempts != 0)
			extra("olderThan", g.OlderThan != "")
		case EventFailureRate:
			if r.Rate <= 0 || r.Rate > 1 {
				add(p+".rate", "invalid_rate", "must be a share above 0 and at most 1, such as 0.5")
			}
			if r.MinAttempts < 1 || r.MinAttempts > 1_000_000 {
				add(p+".minAttempts", "invalid_count", "must be between 1 and 1000000")
			}
			checkDuration(p+".window", r.Window, add)
			extra("count", g.Count != 0)
			extra("olderThan", g.OlderThan != "")
		case EventBacklogAge:
			checkDuration(p+".olderThan", r.OlderThan, add)
			extra("count", g.Count != 0)
			extra("window", g.Window != "")
			extra("rate", g.Rate != 0)
			extra("minAttempts", g.MinAttempts != 0)
		default:
			extra("count", g.Count != 0)
			extra("window", g.Window != "")
			extra("rate", g.Rate != 0)
			extra("minAttempts", g.MinAttempts != 0)
			extra("olderThan", g.OlderThan != "")
		}
	}
	return problems
}
