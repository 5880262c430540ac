package app_test

import (
	"net/http"
	"testing"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/simulator"
	"github.com/qgate/qgate/internal/support"
)

// membership is richProfile(email) with aud1 in the given status.
func membership(email, status string) map[string]any {
	p := richProfile(email)
	p["segmentMembership"] = map[string]any{"ups": map[string]any{
		aud1: map[string]any{"lastQualificationTime": "2023-09-05T10:43:55Z", "status": status},
	}}
	return p
}

// A replayed dead letter must not overwrite a newer update already delivered for the same
// profile and destination (a replayed "realized" after the delivered "exited" would put the
// person back into the audience); the answer names the skipped one and why, and "force" sends
// it anyway.
func TestReplayKeepsOrderPerProfile(t *testing.T) {
	e := startDelivery(t, nil)
	dest, wf := e.destination("replayorder", nil)
	e.sim.Script(wf, simulator.Step{Status: 400, Body: `{"meta":{"httpStatus":"400 - Bad Request"}}`})
	realized := e.post(membership("order@example.com", "realized"))
	e.awaitStatus(realized, dest, delivery.DeadLettered)
	exited := e.post(membership("order@example.com", "exited"))
	e.awaitStatus(exited, dest, delivery.Delivered)
	// Another profile's dead letter is not held back by it.
	e.sim.Script(wf, simulator.Step{Status: 400, Body: `{"meta":{"httpStatus":"400 - Bad Request"}}`})
	other := e.post(membership("other@example.com", "realized"))
	e.awaitStatus(other, dest, delivery.DeadLettered)
	runsBefore := len(e.runs(wf, 3))

	realizedID, otherID := delivery.ID(realized, dest), delivery.ID(other, dest)
	status, body, _ := e.do("POST", "/v1/dead-letters/replay", e.support, map[string]any{"filter": map[string]any{"destinationId": dest}})
	res := decode[support.ReplayResult](t, body)
	if status != http.StatusOK || res.Replayed != 1 || res.DeliveryIDs[0] != otherID || len(res.Skipped) != 1 ||
		res.Skipped[0] != (delivery.Skipped{DeliveryID: realizedID, Reason: "newer_delivered", NewerUpdateID: exited}) {
		t.Fatalf("replay: %d %s", status, body)
	}
	e.awaitStatus(other, dest, delivery.Delivered)
	runs := e.runs(wf, runsBefore+1)
	for _, r := range runs[runsBefore:] {
		if r.IdempotencyKey == realizedID {
			t.Fatalf("the older update went out after the newer one: %+v", r)
		}
	}
	if d := e.awaitStatus(realized, dest, delivery.DeadLettered); len(d.Attempts) != 1 {
		t.Fatalf("the skipped dead letter changed: %+v", d)
	}

	// Forced: the operator knows better; it goes out.
	status, body, _ = e.do("POST", "/v1/dead-letters/replay", e.support, map[string]any{"deliveryIds": []string{realizedID}, "force": true})
	if res := decode[support.ReplayResult](t, body); status != http.StatusOK || res.Replayed != 1 || len(res.Skipped) != 0 {
		t.Fatalf("forced replay: %d %s", status, body)
	}
	if d := e.awaitStatus(realized, dest, delivery.Delivered); len(d.Attempts) != 2 {
		t.Fatalf("forced replay attempts: %+v", d.Attempts)
	}
}
