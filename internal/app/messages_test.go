package app_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/simulator"
)

// logLine waits (up to 20 s) for a JSON log line whose message contains part and returns it.
func (n *node) logLine(part string) map[string]any {
	n.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		for _, l := range strings.Split(n.logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil {
				if msg, _ := m["msg"].(string); strings.Contains(msg, part) {
					return m
				}
			}
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("no log line contains %q:\n%s", part, n.logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The circuit's log line names the destination and why it opened; a dead letter leaves one
// line with the destination's name and the profile's hash, never the email.
func TestCircuitAndDeadLetterLogLinesNameTheDestination(t *testing.T) {
	e := startDelivery(t, nil)
	nps, wfNPS := e.destination("nps", map[string]any{"name": "nps follow-up"})
	e.sim.ForceUnauthorized(wfNPS, true)
	bad, wfBad := e.destination("bad-request", nil)
	e.sim.Script(wfBad, simulator.Step{Status: 400, Body: `{"meta":{"httpStatus":"400 - Bad Request"}}`})

	const email = "log-line-person@example.com"
	id := e.post(richProfile(email))
	e.awaitStatus(id, bad, delivery.DeadLettered)

	open := e.logLine(`circuit opened for destination "nps follow-up"`)
	if msg := open["msg"].(string); !strings.Contains(msg, `401 from "nps follow-up"`) {
		t.Fatalf("circuit line does not say why: %q", msg)
	}
	if open["destinationId"] != nps || open["statusCode"] != float64(401) || open["destination"] != "nps follow-up" {
		t.Fatalf("circuit line fields: %v", open)
	}

	dl := e.logLine(`delivery dead-lettered at destination "bad-request"`)
	if dl["destinationId"] != bad || dl["updateId"] != id || dl["reason"] != "client_error" || dl["statusCode"] != float64(400) {
		t.Fatalf("dead-letter line fields: %v", dl)
	}
	if key, _ := dl["profileKey"].(string); len(key) != 32 {
		t.Fatalf("dead-letter line has no profile hash: %v", dl)
	}
	if strings.Contains(e.logs.String(), email) {
		t.Fatalf("the logs contain the email")
	}
}
