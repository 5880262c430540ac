package update

import (
	"encoding/json"
	"errors"
	"testing"
	"time"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.FixedZone("x", 3600))
	in := Envelope{V: Version, UpdateID: NewID(), ReceivedAt: at, ProfileKey: "abc", Profile: json.RawMessage(`{"a":"\u00e9\"x"}`)}
	b := AppendEncode(nil, in)
	if !json.Valid(b) {
		t.Fatalf("invalid JSON: %s", b)
	}
	out, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if out.UpdateID != in.UpdateID || !out.ReceivedAt.Equal(at) || out.ProfileKey != "abc" || string(out.Profile) != string(in.Profile) {
		t.Fatalf("round trip: got %+v want %+v", out, in)
	}
	if out.ReceivedAt.Location() != time.UTC {
		t.Fatalf("receivedAt not UTC: %v", out.ReceivedAt)
	}
}

func TestDecodeRefusesNewerVersionsAndGarbage(t *testing.T) {
	for name, in := range map[string]string{
		"newer":     `{"v":2,"updateId":"x","profile":{}}`,
		"zero":      `{"updateId":"x","profile":{}}`,
		"noProfile": `{"v":1,"updateId":"x"}`,
		"garbage":   `{"v":1,`,
	} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("%s: decoded", name)
		} else if name == "newer" && !errors.Is(err, ErrVersion) {
			t.Errorf("newer: %v is not ErrVersion", err)
		}
	}
}

func TestIDsSortByTime(t *testing.T) {
	a := NewID()
	b := NewID()
	if !(a < b) {
		t.Fatalf("ids not increasing: %s then %s", a, b)
	}
}
