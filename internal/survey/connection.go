package survey

import (
	"encoding/json"
	"fmt"
	"time"
)

// Connection is one Qualtrics account qgate syncs: a base URL
// (https://{datacenter}.qualtrics.com/API/v3/) and a Brand Admin service account's API token.
type Connection struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	BaseURL  string `json:"baseUrl"`
	Token    string `json:"-"` // plaintext, only in memory while syncing
	Sealed   []byte `json:"-"`
	TokenEnd string `json:"apiTokenLast4"`
	// EventsKey authenticates Qualtrics' event-subscription posts (…/events?key=); write-only.
	EventsKeySealed []byte `json:"-"`
	EventsKeySet    bool   `json:"eventsKeySet"`
	// BrandID is learnt from whoami (test or sync); it builds the "review distributions" link.
	BrandID          string   `json:"brandId"`
	IncrementalEvery Duration `json:"incrementalEvery"`
	FullEvery        Duration `json:"fullEvery"`
	ExpiryLead       Duration `json:"expiryLead"`
	// Threshold alerts (0: off): survey.lowCompletion when finished/sent is below
	// LowCompletionBelow at the stats moment; survey.bounceSpike when (bounced+complaints)/sent
	// exceeds BounceRateAbove with at least MinSentForBounceAlert sent.
	LowCompletionBelow float64   `json:"lowCompletionBelow"`
	BounceRateAbove    float64   `json:"bounceRateAbove"`
	Version            int64     `json:"version"`
	CreatedAt          time.Time `json:"createdAt"`
	UpdatedAt          time.Time `json:"updatedAt"`

	// Schedule state, kept by the store and shown read-only.
	SyncRequestedAt   *time.Time `json:"syncRequestedAt"`
	LastIncrementalAt *time.Time `json:"-"`
	LastFullAt        *time.Time `json:"-"`
	// SurveysSince is the lastModified cursor of the next incremental pass: the start of the
	// last successful pass (so nothing modified during a pass is missed).
	SurveysSince *time.Time `json:"-"`
	LastSync     *SyncRun   `json:"lastSync"`
	LastGoodSync *SyncRun   `json:"lastGoodSync"`
	DeletedAt    *time.Time `json:"-"`
}

// Defaults of a connection's schedule, after the model (full hourly, incremental every 15
// minutes, reminders 24 hours before expiry).
const (
	DefaultIncrementalEvery = 15 * time.Minute
	DefaultFullEvery        = time.Hour
	DefaultExpiryLead       = 24 * time.Hour
)

// Duration is a time.Duration written in JSON as Go's duration string ("15m", "1h30m").
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"15m\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("not a duration such as \"15m\" or \"1h\"")
	}
	*d = Duration(v)
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Sync modes.
const (
	ModeIncremental = "incremental"
	ModeFull        = "full"
)

// Sync outcomes.
const (
	OutcomeRunning   = "running"
	OutcomeSucceeded = "succeeded"
	OutcomeFailed    = "failed"
)

// SyncRun is one sync of a connection: when, how, what it found, and why it failed.
type SyncRun struct {
	ID           string     `json:"id"`
	ConnectionID string     `json:"connectionId"`
	Mode         string     `json:"mode"`
	Node         string     `json:"node"`
	StartedAt    time.Time  `json:"startedAt"`
	EndedAt      *time.Time `json:"endedAt"`
	Outcome      string     `json:"outcome"`
	Counts       Counts     `json:"counts"`
	Requests     int        `json:"requests"`
	Error        string     `json:"error,omitempty"`
}

// Counts are what a sync fetched, by kind.
type Counts struct {
	Users         int `json:"users"`
	Surveys       int `json:"surveys"`
	Distributions int `json:"distributions"`
	History       int `json:"history"`
	Links         int `json:"links"`
	Directories   int `json:"directories"`
	Contacts      int `json:"contacts"`
	Notifications int `json:"notifications"`
}
