package app

import (
	"context"

	"github.com/qgate/qgate/internal/alert"
	"github.com/qgate/qgate/internal/store"
)

// alertSurveys gives the alert evaluator every survey connection's latest sync
// (survey.syncFailed).
type alertSurveys struct{ store *store.DB }

func (s alertSurveys) LatestSurveySyncs(ctx context.Context) ([]alert.SurveySync, error) {
	conns, err := s.store.ListSurveyConnections(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]alert.SurveySync, 0, len(conns))
	for _, c := range conns {
		if c.LastSync == nil {
			continue
		}
		r := c.LastSync
		at := r.StartedAt
		if r.EndedAt != nil {
			at = *r.EndedAt
		}
		out = append(out, alert.SurveySync{ConnectionID: c.ID, ConnectionName: c.Name, RunID: r.ID, Outcome: r.Outcome, Error: r.Error, At: at})
	}
	return out, nil
}
