package bench

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

func TestArrayBodiesAreThePeersForm(t *testing.T) {
	b := ArrayBodies(2, 100)
	var profiles []map[string]any
	if err := json.Unmarshal(b[1], &profiles); err != nil || len(profiles) != 100 {
		t.Fatalf("batch 100 is not a JSON array of 100: %d, %v", len(profiles), err)
	}
	if !bytes.Contains(b[1], []byte("person100@example.com")) || bytes.Contains(b[1], []byte("person99@example.com")) {
		t.Error("second body should hold profiles 100..199, as Bodies does")
	}
	one := ArrayBodies(1, 1)[0]
	if !bytes.Equal(one, Body(0, 1)) {
		t.Errorf("batch 1 should be the single object: %.80s", one)
	}
	if got := AsArray([]byte(`{"person":{}}`)); string(got) != `{"person":{}}` {
		t.Errorf("AsArray changed a single profile: %s", got)
	}
	routed := AsArray(AppendRoutedBody(nil, 0, 3, 7))
	if err := json.Unmarshal(routed, &profiles); err != nil || len(profiles) != 3 {
		t.Errorf("routed array: %d, %v", len(profiles), err)
	}
}

func TestScenarioCheck(t *testing.T) {
	qgate := Scenario{Batch: 2}
	peer := Scenario{Batch: 2, Status: 200, PeerAnswer: true}
	for _, tc := range []struct {
		s      Scenario
		status int
		body   string
		err    string // "" ok
	}{
		{qgate, 202, `{"accepted":2,"results":[]}`, ""},
		{qgate, 202, `{"accepted":1,"results":[]}`, "accepted 1 of 2"},
		{qgate, 200, ``, "status 200"},
		{qgate, 503, `{"error":"x"}`, "status 503"},
		{peer, 200, ``, ""},
		{peer, 202, `{"accepted":2}`, "status 202"},
		{peer, 500, `boom`, "status 500"},
	} {
		err := tc.s.Check(tc.status, []byte(tc.body))
		if (tc.err == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("Check(%d, %s) with %+v = %v, want %q", tc.status, tc.body, tc.s, err, tc.err)
		}
	}
}
