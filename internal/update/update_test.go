package update

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
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

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func checkDecode(t *testing.T, in []byte) {
	t.Helper()
	got, gerr := Decode(in)
	want, werr := unmarshal(in)
	if !reflect.DeepEqual(got, want) || errString(gerr) != errString(werr) || errors.Is(gerr, ErrVersion) != errors.Is(werr, ErrVersion) {
		t.Fatalf("Decode(%q)\n got %#v, %v\nwant %#v, %v", in, got, gerr, want, werr)
	}
	// Where the hand-written decoder answers, it answers as json.Unmarshal does (before
	// Decode's own checks).
	if fast, ok := decode(in); ok {
		var ref Envelope
		if err := json.Unmarshal(in, &ref); err != nil || !reflect.DeepEqual(fast, ref) {
			t.Fatalf("decode(%q)\n got %#v\nwant %#v, %v", in, fast, ref, err)
		}
	}
}

// The sample profile of BRIEF §3, as the receiver passes it on.
const sampleProfile = `{"person": {"name": {"firstName": "Dave"}},
 "mobilePhone": {"number": "0123456789"},
 "identityMap": {"Email": [{"id": "dave@example.com"}], "ECID": [{"id": "45870000000000000000000000000000000001"}]},
 "segmentMembership": {"ups": {"046456e3b-18e1-48a6-9bda-d68547861283":
     {"lastQualificationTime": "2023-09-05T10:43:55.602687Z", "status": "realized"},
     "7a1b2c3d-18e1-48a6-9bda-d68547861284":
     {"lastQualificationTime": "2023-09-06T08:00:00Z", "status": "existing"}}},
 "loyalty": {"tier": "gold", "points": 12345, "memberSince": "2019-04-01"},
 "preferences": {"language": "en-GB", "channels": ["email", "sms"], "marketingOptIn": true},
 "homeAddress": {"city": "London", "postalCode": "SW1A 1AA", "country": "GB"}}`

func sampleEnvelope() []byte {
	return AppendEncode(nil, Envelope{V: Version, UpdateID: "0190f3c2-7a4b-7c3d-8e9f-0123456789ab",
		ReceivedAt: time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC), ProfileKey: "3f2a9c0d1e4b5a6978877665544332211",
		Profile: json.RawMessage(sampleProfile)})
}

func deep(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

var decodeCases = []string{
	`{"v":1,"updateId":"u","receivedAt":"2026-11-22T10:00:00.123456789Z","profileKey":"k","profile":{"a":1}}`,
	" \t\n{ \"v\" : 1 ,\r\n\"updateId\":\"u\", \"profile\" : [ 1 , \"<&>\" , { } , [ ] ] } \n",
	`{"profile":1,"updateId":"u","v":1}`,
	`{"v":1,"updateId":"u","profile":null}`,
	`{"v":1,"updateId":"u","profile":"str","profileKey":""}`,
	`{"v":1,"updateId":"u","profile":{},"unknown":{"a":[1,2]}}`,
	`{"V":1,"UpdateID":"u","PROFILE":{}}`,
	`{"v":1,"updateId":"u","updateId":"w","profile":{}}`,
	`{"v":1,"updateId":"u","profile":{},"profile":[]}`,
	`{"v":1,"v":1,"updateId":"u","profile":{}}`,
	`{"v":1,"updateId":"u\u00e9\n","profile":{}}`,
	`{"v":1,"updateId":"u","profileKey":"\/","profile":{}}`,
	"{\"v\":1,\"updateId\":\"u\xff\",\"profile\":{}}",
	"{\"v\":1,\"updateId\":\"ué\",\"profile\":{}}",
	"{\"v\":1,\"updateId\":\"u\x01\",\"profile\":{}}",
	"{\"v\":1,\"updateId\":\"u\",\"profile\":\"\xff\x00\"}",
	`{"v":1,"updateId":null,"profile":{}}`,
	`{"v":null,"updateId":"u","profile":{}}`,
	`{"v":1,"updateId":1,"profile":{}}`,
	`{"v":"1","updateId":"u","profile":{}}`,
	`{"v":1.0,"updateId":"u","profile":{}}`,
	`{"v":1e0,"updateId":"u","profile":{}}`,
	`{"v":-0,"updateId":"u","profile":{}}`,
	`{"v":01,"updateId":"u","profile":{}}`,
	`{"v":2,"updateId":"u","profile":{}}`,
	`{"v":-7,"updateId":"u","profile":{}}`,
	`{"v":999999999,"updateId":"u","profile":{}}`,
	`{"v":99999999999999999999,"updateId":"u","profile":{}}`,
	`{"v":1,"updateId":"u","profile":{},"receivedAt":"2026-11-22T10:00:00+01:00"}`,
	`{"v":1,"updateId":"u","profile":{},"receivedAt":"2026-11-22T10:00:00.5-23:59"}`,
	`{"v":1,"updateId":"u","profile":{},"receivedAt":"2026-11-22T10:00:00+24:00"}`,
	`{"v":1,"updateId":"u","profile":{},"receivedAt":"2026-11-22T10:00:00"}`,
	`{"v":1,"updateId":"u","profile":{},"receivedAt":null}`,
	`{"v":1,"updateId":"u","profile":{},"receivedAt":"2026-11-22T10:00:00\u005a"}`,
	`{"v":1,"updateId":"u","profile":{},"receivedAt":1}`,
	`{"v":1,"updateId":"u","profile":{}} x`,
	`{"v":1,"updateId":"u","profile":{}}{}`,
	`{"v":1,"updateId":"u","profile":{"a":}}`,
	`{"v":1,"updateId":"u","profile":[1,]}`,
	`{"v":1,"updateId":"u","profile":{"a" 1}}`,
	`{"v":1,"updateId":"u","profile":{1:1}}`,
	`{"v":1,"updateId":"u","profile":"\u12"}`,
	`{"v":1,"updateId":"u","profile":"\'"}`,
	`{"v":1,"updateId":"u","profile":[1.]}`,
	`{"v":1,"updateId":"u","profile":[.1]}`,
	`{"v":1,"updateId":"u","profile":[1E+]}`,
	`{"v":1,"updateId":"u","profile":[+1]}`,
	`{"v":1,"updateId":"u","profile":[-01]}`,
	`{"v":1,"updateId":"u","profile":[fals]}`,
	`{"v":1,"updateId":"u","profile":` + deep(600) + `}`,
	`{"v":1,"updateId":"u","profile":` + deep(10001) + `}`,
	`{"v":1,"updateId":"u"}`,
	`{"v":1,"profile":{}}`,
	`{"v":1,"updateId":"u","profile":{}`,
	`{"v":1 "updateId":"u"}`,
	`{}`, `[]`, `null`, `"x"`, ``, ` `, `{`, `{"v"`, `{"v":`, `{"v":1`, `{"v":1,}`,
}

func TestDecodeMatchesJSON(t *testing.T) {
	for _, in := range decodeCases {
		t.Run("", func(t *testing.T) { checkDecode(t, []byte(in)) })
	}
	in := sampleEnvelope()
	checkDecode(t, in)
	if _, ok := decode(in); !ok {
		t.Fatal("an envelope written by AppendEncode fell back to encoding/json")
	}
}

// FuzzDecode holds Decode to json.Unmarshal for any input.
func FuzzDecode(f *testing.F) {
	for _, in := range decodeCases {
		f.Add([]byte(in))
	}
	f.Add(sampleEnvelope())
	f.Fuzz(func(t *testing.T, in []byte) { checkDecode(t, in) })
}

func BenchmarkDecode(b *testing.B) {
	in := sampleEnvelope()
	for _, bc := range []struct {
		name string
		dec  func([]byte) (Envelope, error)
	}{{"json", unmarshal}, {"hand", Decode}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.dec(in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
