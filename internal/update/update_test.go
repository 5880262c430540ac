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

// unmarshal is Decode with encoding/json: the reference Decode is held to (the same envelope,
// the same inputs refused, ErrVersion for the same ones; the wording of errors is go-json's).
func unmarshal(b []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return Envelope{}, err
	}
	if e.V < 1 || e.V > Version {
		return Envelope{}, ErrVersion
	}
	if e.UpdateID == "" || len(e.Profile) == 0 {
		return Envelope{}, errors.New("missing updateId or profile")
	}
	return e, nil
}

func checkDecode(t *testing.T, in []byte) {
	t.Helper()
	got, gerr := Decode(in)
	want, werr := unmarshal(in)
	if !reflect.DeepEqual(got, want) || (gerr == nil) != (werr == nil) || errors.Is(gerr, ErrVersion) != errors.Is(werr, ErrVersion) {
		t.Fatalf("Decode(%q)\n got %#v, %v\nwant %#v, %v", in, got, gerr, want, werr)
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
	checkDecode(t, sampleEnvelope())
}

// AppendEncode writes JSON that encoding/json reads back as e, whatever the strings hold.
func TestAppendEncodeIsJSON(t *testing.T) {
	at := time.Date(2026, 11, 22, 10, 0, 0, 5, time.UTC)
	for _, s := range []string{"", "plain", "<&>\"\\\n\x00\x1f\u2028", "é😀", "a\xffb"} {
		in := Envelope{V: Version, UpdateID: s, ReceivedAt: at, ProfileKey: s + "k", Profile: json.RawMessage(`{"a":[1,"x"]}`)}
		b := AppendEncode([]byte("prefix"), in)
		var out Envelope
		if err := json.Unmarshal(b[len("prefix"):], &out); err != nil {
			t.Fatalf("AppendEncode(%q): %v: %s", s, err, b)
		}
		want := strings.ToValidUTF8(s, "\ufffd")
		if out.UpdateID != want || out.ProfileKey != want+"k" || !out.ReceivedAt.Equal(at) || string(out.Profile) != string(in.Profile) {
			t.Fatalf("AppendEncode(%q) reads back as %+v", s, out)
		}
	}
	e := Envelope{V: Version, UpdateID: NewID(), ReceivedAt: at, ProfileKey: "k", Profile: json.RawMessage(sampleProfile)}
	buf := make([]byte, 0, 4096)
	if n := testing.AllocsPerRun(100, func() { buf = AppendEncode(buf[:0], e) }); n != 0 {
		t.Errorf("AppendEncode: %v allocations, want 0", n)
	}
}

// FuzzDecode holds Decode to json.Unmarshal for any input (the same envelope, the same inputs
// refused).
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
	}{{"json", unmarshal}, {"go-json", Decode}} {
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
