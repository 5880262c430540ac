package router

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/fault"
	"github.com/qgate/qgate/internal/profile"
	"github.com/qgate/qgate/internal/qualtrics"
	"github.com/qgate/qgate/internal/update"
)

// Sender delivers one request and classifies its outcome.
type Sender interface {
	Send(ctx context.Context, req qualtrics.Request) qualtrics.Result
}

// Tester implements the operator's "test destination": one profile through the real transform
// and the real client, recorded nowhere as a delivery.
type Tester struct {
	Sender Sender
}

// SampleProfile is sent when the operator gives none. Its audience list is filled with the
// destination's audiences so the payload shows what a real delivery carries.
func SampleProfile(audiences []string) json.RawMessage {
	ups := map[string]any{}
	for _, a := range audiences {
		ups[a] = map[string]any{"status": "realized", "lastQualificationTime": "2026-01-01T00:00:00Z"}
	}
	b, _ := json.Marshal(map[string]any{
		"person":            map[string]any{"name": map[string]any{"firstName": "Test", "lastName": "Profile"}},
		"identityMap":       map[string]any{"Email": []any{map[string]any{"id": "qgate-test@example.com"}}, "ECID": []any{map[string]any{"id": "00000000000000000000000000000000000000"}}},
		"segmentMembership": map[string]any{"ups": ups},
	})
	return b
}

// Test sends raw (or the sample profile) to d.
func (t *Tester) Test(ctx context.Context, d destination.Destination, raw json.RawMessage) (destination.TestResult, error) {
	if len(raw) == 0 {
		raw = SampleProfile(d.Audiences)
	}
	p, ferrs := profile.Parse(raw, profile.DefaultLimits())
	if ferrs != nil {
		problems := make([]fault.Problem, len(ferrs))
		for i, fe := range ferrs {
			problems[i] = fault.Problem{Path: "profile." + fe.Path, Code: fe.Code, Message: fe.Message}
			if fe.Path == "" {
				problems[i].Path = "profile"
			}
		}
		return destination.TestResult{}, fault.Of(fault.Invalid, problems...)
	}
	s, err := Shape(&d, p)
	if err != nil {
		return destination.TestResult{}, err
	}
	if s.Excluded != "" {
		return destination.TestResult{Outcome: string(delivery.Excluded), Reason: s.Excluded}, nil
	}
	res := t.Sender.Send(ctx, qualtrics.Request{URL: d.URL, Username: d.Username, Token: d.Token, Body: s.Payload, IdempotencyKey: "test-" + update.NewID()})
	if res.Class == qualtrics.Retryable && errors.Is(ctx.Err(), context.Canceled) {
		return destination.TestResult{}, ctx.Err()
	}
	return destination.TestResult{
		Delivered:   res.Class == qualtrics.Delivered,
		StatusCode:  res.Status,
		LatencyMS:   float64(res.Latency.Microseconds()) / 1000,
		Outcome:     res.Class.String(),
		Reason:      string(res.Reason),
		BodyExcerpt: res.Excerpt,
		Payload:     s.Payload,
	}, nil
}
