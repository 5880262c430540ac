//go:build linux

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/simulator"
)

// TestDestinationChangesReachEveryNode: two serve processes on one PostgreSQL schema. A token
// rotated through one node is used by whichever node sends within 2 s of the rotation answer
// (the simulator refuses the old token from the moment of the rotation); a destination deleted
// through one node closes the deliveries waiting for it on the other as destination_deleted,
// and nothing more is sent to it.
func TestDestinationChangesReachEveryNode(t *testing.T) {
	dbURL := pgSchema(t)
	e := newEnv(t, simulator.Config{})
	n1 := e.startNode("node1", dbURL)
	n2 := e.startNode("node2", dbURL)
	destID, wf := n1.destination("changes", simulator.Workflow{}, nil)
	dests := []string{destID}
	c := &http.Client{Timeout: 10 * time.Second}
	batch := func(prefix string, n int) []item {
		b := make([]item, n)
		for i := range b {
			b[i] = newItem(fmt.Sprintf("%s-%d@example.com", prefix, i), []string{"aud-changes"}, dests)
		}
		return b
	}
	pick := func(a int) *node { return []*node{n1, n2}[a%2] }

	// Warm up: both nodes know the destination and one of them holds it.
	l := newLedger()
	if err := l.sendAll(context.Background(), pick, c, batch("warm", 10), time.Now().Add(20*time.Second)); err != nil {
		fatal(t, err)
	}
	awaitTerminal(t, n1, l, 30*time.Second)

	// Rotate through node 2 while the workflow switches to the new token.
	const newToken = "token-changes-rotated-0002"
	e.sim.AddWorkflow(simulator.Workflow{ID: wf, Username: "user-changes", Token: newToken})
	status, body := n2.must("PATCH", "/v1/destinations/"+destID, e.operatorKey, map[string]any{"apiToken": newToken})
	if status != http.StatusOK {
		fatalf(t, "rotate: %d %s", status, body)
	}
	rotatedAt := time.Now()
	before := len(e.sim.Runs(wf))
	lr := newLedger()
	for k := range 4 { // spread over 2 s: some before the 2 s mark, some after
		if err := lr.sendAll(context.Background(), pick, c, batch(fmt.Sprintf("rotated%d", k), 5), time.Now().Add(20*time.Second)); err != nil {
			fatal(t, err)
		}
		time.Sleep(600 * time.Millisecond) // pacing of the load (timeline, not synchronisation)
	}
	recs := awaitTerminal(t, n2, lr, 45*time.Second)
	for id, rs := range recs {
		for _, r := range rs {
			if r.Status != delivery.Delivered {
				errorf(t, "update %s after the rotation ended %s (%s), want delivered", id, r.Status, r.Reason)
			}
		}
	}
	var old, late int
	for _, r := range e.sim.Runs(wf)[before:] {
		if r.Status == http.StatusUnauthorized {
			old++
			if r.Time.Sub(rotatedAt) > 2*time.Second {
				late++
			}
		}
	}
	t.Logf("after the rotation: %d calls refused for the old token, %d of them more than 2 s after the answer", old, late)
	if late > 0 {
		errorf(t, "%d calls used the old token more than 2 s after the rotation answer", late)
	}

	// Delete through node 1 while deliveries wait (paused) for it.
	if status, body := n2.must("POST", "/v1/destinations/"+destID+"/pause", e.operatorKey, nil); status != http.StatusOK {
		fatalf(t, "pause: %d %s", status, body)
	}
	time.Sleep(2 * time.Second) // the pause reaches both nodes (what this test is not about)
	ld := newLedger()
	if err := ld.sendAll(context.Background(), pick, c, batch("deleted", 10), time.Now().Add(20*time.Second)); err != nil {
		fatal(t, err)
	}
	// Wait until all ten are routed (and so waiting for the destination).
	deadline := time.Now().Add(20 * time.Second)
	for {
		routed := 0
		ld.mu.Lock()
		ids := make([]string, 0, len(ld.updates))
		for id := range ld.updates {
			ids = append(ids, id)
		}
		ld.mu.Unlock()
		for _, id := range ids {
			if rs, err := updateDeliveries(n1, c, id); err == nil && len(rs) == 1 {
				routed++
			}
		}
		if routed == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			fatalf(t, "%d of %d updates routed within 20 s", routed, len(ids))
		}
		time.Sleep(100 * time.Millisecond)
	}
	sentBefore := len(e.sim.Runs(wf))
	if status, body := n1.must("DELETE", "/v1/destinations/"+destID, e.operatorKey, nil); status != http.StatusNoContent {
		fatalf(t, "delete: %d %s", status, body)
	}
	deletedAt := time.Now()
	recs = awaitTerminal(t, n2, ld, 30*time.Second)
	closed := 0
	for _, rs := range recs {
		for _, r := range rs {
			if r.Status == delivery.Excluded && r.Reason == delivery.ReasonDestinationDeleted {
				closed++
			} else {
				errorf(t, "a delivery waiting for the deleted destination ended %s (%s)", r.Status, r.Reason)
			}
		}
	}
	t.Logf("%d waiting deliveries closed as destination_deleted within %s of the delete answer", closed, time.Since(deletedAt).Round(time.Millisecond))
	if n := len(e.sim.Runs(wf)) - sentBefore; n != 0 {
		errorf(t, "%d calls reached the deleted destination's workflow", n)
	}
	// A profile ingested 2 s after the delete answer is not routed to it at all.
	time.Sleep(time.Until(deletedAt.Add(2 * time.Second))) // the 2 s contract itself
	lb := newLedger()
	if err := lb.sendAll(context.Background(), pick, c, batch("later", 4), time.Now().Add(20*time.Second)); err != nil {
		fatal(t, err)
	}
	for id := range lb.updates {
		deadline := time.Now().Add(20 * time.Second)
		for {
			rs, err := updateDeliveries(n1, c, id)
			if err == nil && rs != nil {
				if len(rs) != 0 {
					errorf(t, "update %s ingested 2 s after the delete was routed to %s", id, rs[0].DestinationID)
				}
				break
			}
			if time.Now().After(deadline) {
				fatalf(t, "update %s never routed", id)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}
