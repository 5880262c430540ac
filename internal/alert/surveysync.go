package alert

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// EventSurveySyncFailed fires when a survey connection's latest sync failed; its episode ends
// when a later sync succeeds. It is per connection: the episode's and the alert's destination
// slot holds the connection's ID, and a subscription's destinationIds do not filter it (it
// covers every connection).
const EventSurveySyncFailed = "survey.syncFailed"

// Outcomes of a survey sync the evaluator reads (the survey package's).
const (
	SyncSucceeded = "succeeded"
	SyncFailed    = "failed"
)

// SurveySync is a survey connection and the outcome of its latest sync.
type SurveySync struct {
	ConnectionID   string
	ConnectionName string
	RunID          string
	Outcome        string // succeeded, failed; anything else (running, none) changes nothing
	Error          string // the failed sync's error, already free of secrets
	At             time.Time
}

// SurveySyncs lists every live survey connection's latest sync.
type SurveySyncs interface {
	LatestSurveySyncs(ctx context.Context) ([]SurveySync, error)
}

// passSurveySyncs evaluates survey.syncFailed for every connection and the subscriptions
// that want it; it returns how many alerts it recorded.
func (e *Evaluator) passSurveySyncs(ctx context.Context, subs []Subscription, isOpen map[Episode]bool, now time.Time) (int, error) {
	if e.Surveys == nil {
		return 0, nil
	}
	var wanting []Subscription
	for _, s := range subs {
		if _, ok := s.Wants(EventSurveySyncFailed, ""); ok {
			wanting = append(wanting, s)
		}
	}
	if len(wanting) == 0 {
		return 0, nil
	}
	syncs, err := e.Surveys.LatestSurveySyncs(ctx)
	if err != nil {
		return 0, fmt.Errorf("alerts: survey syncs: %w", err)
	}
	fired := 0
	for _, c := range syncs {
		if c.Outcome != SyncFailed && c.Outcome != SyncSucceeded {
			continue
		}
		for _, s := range wanting {
			ep := Episode{SubscriptionID: s.ID, Condition: EventSurveySyncFailed, DestinationID: c.ConnectionID}
			switch {
			case c.Outcome == SyncFailed && !isOpen[ep]:
				ok, err := e.Store.FireAlert(ctx, ep, now, newSyncAlert(s, c, now))
				if err != nil {
					return fired, err
				}
				if ok {
					fired++
				}
			case c.Outcome == SyncSucceeded && isOpen[ep]:
				if _, err := e.Store.ClearEpisode(ctx, ep, now, nil); err != nil {
					return fired, err
				}
			}
		}
	}
	return fired, nil
}

func newSyncAlert(s Subscription, c SurveySync, now time.Time) *Alert {
	id := "alt_" + uuid.Must(uuid.NewV7()).String()
	msg := fmt.Sprintf("the sync of survey connection %q failed: %s", c.ConnectionName, c.Error)
	data := map[string]any{"alertId": id, "subscriptionId": s.ID, "connectionId": c.ConnectionID, "connectionName": c.ConnectionName,
		"destinationId": c.ConnectionID, "destinationName": c.ConnectionName, "syncRunId": c.RunID, "error": c.Error, "at": c.At, "message": msg}
	b, _ := json.Marshal(data)
	return &Alert{ID: id, SubscriptionID: s.ID, Event: EventSurveySyncFailed, DestinationID: c.ConnectionID, DestinationName: c.ConnectionName,
		Message: msg, Data: b, FiredAt: now, Status: StatusPending}
}
