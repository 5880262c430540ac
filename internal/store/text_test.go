package store

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/qgate/qgate/internal/access"
	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/fault"
)

// hostile is text a destination may answer with: a NUL byte (PostgreSQL refuses it in text
// columns) and bytes that are not UTF-8 (PostgreSQL refuses those too).
const hostile = "bad\x00body\xff\xfe end"

// hostileClean is what the store keeps of hostile: each NUL and each run of invalid bytes
// becomes U+FFFD.
const hostileClean = "bad\uFFFDbody\uFFFD end"

// hostileBytes is a payload that is not text at all.
var hostileBytes = []byte("{\"a\":\"\x00\xff\"}\x00\xc3")

func TestCleanText(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"", ""},
		{"plain ascii", "plain ascii"},
		{"ünïcødé ✓", "ünïcødé ✓"},
		{hostile, hostileClean},
		{"\x00", "\uFFFD"},
		{"\x00\x00", "\uFFFD\uFFFD"},
		{"a\xc3", "a\uFFFD"},       // truncated sequence
		{"\xed\xa0\x80", "\uFFFD"}, // a UTF-16 surrogate encoded in UTF-8
	} {
		got := cleanText(c.in)
		if got != c.want || !utf8.ValidString(got) || strings.IndexByte(got, 0) >= 0 {
			t.Errorf("cleanText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// testHostileText writes NUL bytes and invalid UTF-8 in every text the store takes from outside
// (an attempt's error excerpt and reason, a delivery's reason, an alert's message, audiences, a
// key's name) and binary payloads: the write succeeds on both dialects, text reads back as valid
// UTF-8 without NUL (the same on both), payloads read back byte for byte. Identifiers holding
// such bytes are refused with ErrInvalidText and write nothing.
func testHostileText(t *testing.T, db *DB) {
	ctx := context.Background()
	u := delivery.Update{UpdateID: "upd_h", ProfileKey: "p-h", ReceivedAt: t0, RoutedAt: t0, Audiences: []string{"seg-" + hostile, "ok"}}
	a := delivery.Attempt{N: 1, At: t0, StatusCode: 400, LatencyMS: 3, Outcome: "dead_letter", Reason: "bad_request " + hostile, Error: "400: " + hostile}
	dl := delivery.Event{DeliveryID: "dlv_h", UpdateID: "upd_h", DestinationID: "dst_h", Status: delivery.DeadLettered, Reason: "rejected " + hostile,
		At: t0, Attempt: &a, Payload: hostileBytes}
	b := delivery.Batch{
		Updates: []delivery.Update{u},
		Events:  []delivery.Event{dl},
		Park:    []delivery.Parked{{DeliveryID: "dlv_hp", DestinationID: "dst_h", ProfileKey: "p-h", Seq: 1, DueAt: t0, Job: hostileBytes}},
		Alerts:  []delivery.Alert{{ID: "alr_h", DestinationID: "dst_h", Kind: "circuit_opened", Message: "opened after " + hostile, At: t0}},
	}
	if err := db.Apply(ctx, b); err != nil {
		t.Fatalf("Apply with hostile text: %v", err)
	}

	gotU, recs, err := db.GetUpdate(ctx, "upd_h")
	if err != nil || len(recs) != 1 || len(recs[0].Attempts) != 1 {
		t.Fatalf("GetUpdate: %+v %+v %v", gotU, recs, err)
	}
	r, at := recs[0], recs[0].Attempts[0]
	for name, c := range map[string]struct{ got, want string }{
		"audience":       {gotU.Audiences[0], "seg-" + hostileClean},
		"reason":         {r.Reason, "rejected " + hostileClean},
		"attempt reason": {at.Reason, "bad_request " + hostileClean},
		"attempt error":  {at.Error, "400: " + hostileClean},
	} {
		if c.got != c.want {
			t.Errorf("%s read back as %q, want %q", name, c.got, c.want)
		}
	}
	if row := getRow(t, db, "dlv_h"); !bytes.Equal(row.payload, hostileBytes) {
		t.Errorf("payload read back as %q, want %q", row.payload, hostileBytes)
	}
	heads, err := db.ParkedHeads(ctx, "dst_h", t0, 10)
	if err != nil || len(heads) != 1 || !bytes.Equal(heads[0].Job, hostileBytes) {
		t.Errorf("parked job: %+v %v", heads, err)
	}
	alerts, err := db.Alerts(ctx, "dst_h", t0, 10)
	if err != nil || len(alerts) != 1 || alerts[0].Message != "opened after "+hostileClean {
		t.Errorf("alert: %+v %v", alerts, err)
	}

	// A dead letter whose payload is not JSON is left alone by a replay, which replays the
	// others: one such row does not fail the replay of every dead letter.
	ok := event("dlv_h2", delivery.DeadLettered, 0, 0)
	ok.UpdateID, ok.DestinationID, ok.Payload = "upd_h", "dst_h", []byte(`{"ok":true}`)
	apply(t, db, delivery.Batch{Events: []delivery.Event{ok}})
	if got, err := db.ReplayDeadLetters(ctx, delivery.ReplayFilter{DestinationID: "dst_h", Limit: 10}, t0.Add(time.Minute)); err != nil ||
		len(got.Replayed) != 1 || got.Replayed[0].DeliveryID != "dlv_h2" {
		t.Errorf("replay with a payload that is not JSON: %+v %v", got, err)
	}
	if st, err := db.DeliveryStatus(ctx, "dlv_h"); err != nil || st != delivery.DeadLettered {
		t.Errorf("the dead letter that cannot be replayed: %q %v", st, err)
	}

	k := sampleKey("k_h", "ops "+hostile, t0)
	if err := db.CreateKey(ctx, k); err != nil {
		t.Fatalf("CreateKey with hostile name: %v", err)
	}
	if got, err := db.GetKey(ctx, "k_h"); err != nil || got.Name != "ops "+hostileClean {
		t.Errorf("key name read back as %q (%v)", got.Name, err)
	}

	// Identifiers are not text to clean: one holding NUL or invalid UTF-8 is refused clearly,
	// and nothing of its batch is written.
	for name, bad := range map[string]delivery.Batch{
		"delivery ID": {Events: []delivery.Event{{DeliveryID: "dlv_\x00", UpdateID: "upd_x", DestinationID: "dst_x", Status: delivery.Pending, At: t0}}},
		"update ID":   {Updates: []delivery.Update{{UpdateID: "upd_\xff", ProfileKey: "p"}}, Events: []delivery.Event{event("dlv_x1", delivery.Pending, 0, 0)}},
		"profile key": {Park: []delivery.Parked{{DeliveryID: "dlv_x2", DestinationID: "dst_x", ProfileKey: "p\x00", Job: []byte(`{}`)}}},
		"alert ID":    {Alerts: []delivery.Alert{{ID: "alr_\x00", DestinationID: "dst_x", Kind: "k", At: t0}}},
	} {
		if err := db.Apply(ctx, bad); !errors.Is(err, ErrInvalidText) {
			t.Errorf("%s with NUL or invalid UTF-8: Apply = %v, want ErrInvalidText", name, err)
		}
	}
	var n int
	if err := db.db.QueryRowContext(ctx, `SELECT (SELECT COUNT(*) FROM deliveries WHERE destination_id <> 'dst_h') + (SELECT COUNT(*) FROM parked WHERE destination_id <> 'dst_h')
 + (SELECT COUNT(*) FROM alerts WHERE destination_id <> 'dst_h')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("refused batches wrote %d rows (%v)", n, err)
	}
	// Lookups by such an identifier find nothing, on both dialects, instead of failing.
	if _, _, err := db.GetUpdate(ctx, "upd_\x00"); !errors.Is(err, ErrUpdateNotFound) {
		t.Errorf("GetUpdate with NUL: %v", err)
	}
	if _, err := db.GetDelivery(ctx, "dlv_\xff"); !errors.Is(err, fault.NotFound) {
		t.Errorf("GetDelivery with invalid UTF-8: %v", err)
	}
	if st, err := db.DeliveryStatus(ctx, "dlv_\x00"); err != nil || st != "" {
		t.Errorf("DeliveryStatus with NUL: %q %v", st, err)
	}
	if _, err := db.GetKey(ctx, "k_\x00"); !errors.Is(err, access.ErrNotFound) {
		t.Errorf("GetKey with NUL: %v", err)
	}
	if recs, _, err := db.SearchDeliveries(ctx, delivery.Query{DestinationID: "dst_h", Reason: "rejected " + hostile, Limit: 10}); err != nil || len(recs) != 1 {
		t.Errorf("search by a reason with NUL: %d records, %v", len(recs), err)
	}
	if err := db.CreateKey(ctx, access.Key{ID: "k_\x00", Name: "n", Role: access.RoleSupport, Hash: []byte{1}, CreatedAt: t0}); !errors.Is(err, ErrInvalidText) {
		t.Errorf("key ID with NUL: %v, want ErrInvalidText", err)
	}
}
