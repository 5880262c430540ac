package delivery

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"
	"unicode/utf8"
)

// encodeJobJSON and decodeJobJSON are EncodeJob and DecodeJob with encoding/json: the
// references the codec is held to (the same JSON value, the same inputs refused; member order
// and the wording of errors are the codec's own).
func encodeJobJSON(j Job) ([]byte, error) {
	j.V = JobVersion
	return json.Marshal(j)
}

func decodeJobJSON(b []byte) (Job, error) {
	var j Job
	if err := json.Unmarshal(b, &j); err != nil {
		return Job{}, err
	}
	if j.V < 1 || j.V > JobVersion || j.DeliveryID == "" || j.DestinationID == "" || len(j.Payload) == 0 {
		return Job{}, errBadJob
	}
	return j, nil
}

var errBadJob = errors.New("refused")

// A payload as router.Shape writes it.
const samplePayload = `{"identityMap":{"Email":[{"id":"dave@example.com"}],"external_id":[{"id":"45870000000000000000000000000000000001","namespace":"ECID"}]},` +
	`"homeAddress":{"city":"London","country":"GB","postalCode":"SW1A 1AA"},"loyalty":{"memberSince":"2019-04-01","points":12345,"tier":"gold"},` +
	`"mobilePhone":{"number":"0123456789"},"person":{"name":{"firstName":"Dave"}},"preferences":{"channels":["email","sms"],"language":"en-GB","marketingOptIn":true},` +
	`"segmentMembership":{"ups":{"046456e3b-18e1-48a6-9bda-d68547861283":{"lastQualificationTime":"2023-09-05T10:43:55.602687Z","status":"realized"}}}}`

func sampleJob() Job {
	upd := "0190f3c2-7a4b-7c3d-8e9f-0123456789ab"
	return Job{
		DeliveryID: ID(upd, "dst_0190f3c27a4b"), UpdateID: upd, DestinationID: "dst_0190f3c27a4b",
		ProfileKey: "3f2a9c0d1e4b5a6978877665544332211", ReceivedAt: time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC),
		Payload: json.RawMessage(samplePayload),
	}
}

// sameValue reports whether a and b are the same JSON value.
func sameValue(a, b []byte) bool {
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

func checkEncode(t *testing.T, j Job) {
	t.Helper()
	got, gerr := EncodeJob(j)
	want, werr := encodeJobJSON(j)
	if (gerr == nil) != (werr == nil) {
		t.Fatalf("EncodeJob(%+v): error %v, encoding/json's %v", j, gerr, werr)
	}
	if werr != nil {
		return
	}
	if !json.Valid(got) || !sameValue(got, want) {
		t.Fatalf("EncodeJob(%+v)\n got %s\nwant %s (the same value)", j, got, want)
	}
	// Hostile IDs are escaped: nothing but valid UTF-8 goes out where encoding/json writes it.
	if utf8.Valid(want) && !utf8.Valid(got) {
		t.Fatalf("EncodeJob(%+v) writes invalid UTF-8: %q", j, got)
	}
	if bytes.ContainsAny(got, "<>&") != bytes.ContainsAny(want, "<>&") {
		t.Fatalf("EncodeJob(%+v) escapes HTML otherwise than encoding/json:\n got %s\nwant %s", j, got, want)
	}
}

func TestEncodeJobMatchesJSON(t *testing.T) {
	base := sampleJob()
	with := func(f func(*Job)) Job {
		j := base
		f(&j)
		return j
	}
	cases := map[string]Job{
		"sample":             base,
		"generation":         with(func(j *Job) { j.Generation = 17 }),
		"large generation":   with(func(j *Job) { j.Generation = 1<<62 + 5 }),
		"negative gen":       with(func(j *Job) { j.Generation = -3 }),
		"zero":               {},
		"html in ids":        with(func(j *Job) { j.DeliveryID, j.ProfileKey = "<a>&</a>", "x>y" }),
		"quotes, controls":   with(func(j *Job) { j.UpdateID = "\"\\\b\f\n\r\t\x00\x01\x1f\x7f" }),
		"unicode":            with(func(j *Job) { j.DestinationID = "dst_é€😀\u2028\u2029\ufffd" }),
		"invalid utf-8":      with(func(j *Job) { j.ProfileKey = "a\xffb\xc3\x28\xe2\x80\xed\xa0\x80z" }),
		"nil payload":        with(func(j *Job) { j.Payload = nil }),
		"empty payload":      with(func(j *Job) { j.Payload = json.RawMessage{} }),
		"invalid payload":    with(func(j *Job) { j.Payload = json.RawMessage(`{"a":`) }),
		"two values":         with(func(j *Job) { j.Payload = json.RawMessage(`{} {}`) }),
		"spaced payload":     with(func(j *Job) { j.Payload = json.RawMessage(" {\"a\" : [1, 2,\n3 ] }\t") }),
		"html payload":       with(func(j *Job) { j.Payload = json.RawMessage(`{"a":"<b>&c\u2028` + "\u2028\u2029" + `"}`) }),
		"invalid utf-8 body": with(func(j *Job) { j.Payload = json.RawMessage("{\"a\":\"\xff\xe2\x80\"}") }),
		"scalar payloads":    with(func(j *Job) { j.Payload = json.RawMessage(`-0.5e+10`) }),
		"null payload":       with(func(j *Job) { j.Payload = json.RawMessage(`null`) }),
		"escapes in payload": with(func(j *Job) { j.Payload = json.RawMessage(`["\u003c\"\\\/\b\f\n\r\t\uD83D\uDE00"]`) }),
		"bad escape":         with(func(j *Job) { j.Payload = json.RawMessage(`["\x"]`) }),
		"leading zero":       with(func(j *Job) { j.Payload = json.RawMessage(`[01]`) }),
		"deep payload":       with(func(j *Job) { j.Payload = json.RawMessage(deep(600)) }),
		"zero time":          with(func(j *Job) { j.ReceivedAt = time.Time{} }),
		"local time":         with(func(j *Job) { j.ReceivedAt = time.Date(2026, 3, 1, 2, 3, 4, 5, time.Local) }),
		"offset time":        with(func(j *Job) { j.ReceivedAt = time.Date(2026, 3, 1, 2, 3, 4, 500, time.FixedZone("", -(9*3600+30*60))) }),
		"offset seconds":     with(func(j *Job) { j.ReceivedAt = time.Date(1850, 3, 1, 2, 3, 4, 0, time.FixedZone("LMT", -75)) }),
		"offset 24h":         with(func(j *Job) { j.ReceivedAt = time.Date(2026, 3, 1, 2, 3, 4, 0, time.FixedZone("", 24*3600)) }),
		"offset 23:59":       with(func(j *Job) { j.ReceivedAt = time.Date(2026, 3, 1, 2, 3, 4, 0, time.FixedZone("", -(23*3600+59*60))) }),
		"offset 100h":        with(func(j *Job) { j.ReceivedAt = time.Date(2026, 3, 1, 2, 3, 4, 0, time.FixedZone("", 100*3600)) }),
		"year 10000":         with(func(j *Job) { j.ReceivedAt = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) }),
		"year -1":            with(func(j *Job) { j.ReceivedAt = time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC) }),
		"year 0":             with(func(j *Job) { j.ReceivedAt = time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC) }),
		"monotonic":          with(func(j *Job) { j.ReceivedAt = time.Now() }),
	}
	for name, j := range cases {
		t.Run(name, func(t *testing.T) { checkEncode(t, j) })
	}
}

func deep(n int) string {
	b := make([]byte, 0, 2*n)
	for range n {
		b = append(b, '[')
	}
	for range n {
		b = append(b, ']')
	}
	return string(b)
}

func checkDecode(t *testing.T, in []byte) {
	t.Helper()
	got, gerr := DecodeJob(in)
	want, werr := decodeJobJSON(in)
	if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
		t.Fatalf("DecodeJob(%q)\n got %#v, %v\nwant %#v, %v", in, got, gerr, want, werr)
	}
}

var decodeCases = []string{
	`{"v":1,"deliveryId":"dlv_1","updateId":"u","destinationId":"dst_1","profileKey":"k","receivedAt":"2026-11-22T10:00:00.123456789Z","payload":{"a":1}}`,
	" \t\n{ \"v\" : 1 ,\r\n\"deliveryId\":\"d\", \"destinationId\" : \"x\" , \"payload\" : [ 1 , \"<&>\" , { } , [ ] ] } \n",
	`{"deliveryId":"d","destinationId":"x","payload":1,"v":1}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":null}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":"str"}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":true,"updateId":"","profileKey":""}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{},"unknown":{"a":[1,2]}}`,
	`{"V":1,"DeliveryID":"d","destinationid":"x","PAYLOAD":{}}`,
	`{"v":1,"deliveryId":"d","deliveryId":"e","destinationId":"x","payload":{}}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{},"payload":[]}`,
	`{"v":1,"deliveryId":"d\u00e9\n","destinationId":"x","payload":{}}`,
	`{"v":1,"deliveryId":"d\/","destinationId":"x","payload":{}}`,
	"{\"v\":1,\"deliveryId\":\"d\xff\",\"destinationId\":\"x\",\"payload\":{}}",
	"{\"v\":1,\"deliveryId\":\"dé\",\"destinationId\":\"x\",\"payload\":{}}",
	"{\"v\":1,\"deliveryId\":\"d\x01\",\"destinationId\":\"x\",\"payload\":{}}",
	`{"v":1,"deliveryId":null,"destinationId":"x","payload":{}}`,
	`{"v":null,"deliveryId":"d","destinationId":"x","payload":{}}`,
	`{"v":1,"deliveryId":1,"destinationId":"x","payload":{}}`,
	`{"v":"1","deliveryId":"d","destinationId":"x","payload":{}}`,
	`{"v":1.0,"deliveryId":"d","destinationId":"x","payload":{}}`,
	`{"v":1e0,"deliveryId":"d","destinationId":"x","payload":{}}`,
	`{"v":-0,"deliveryId":"d","destinationId":"x","payload":{}}`,
	`{"v":01,"deliveryId":"d","destinationId":"x","payload":{}}`,
	`{"v":2,"deliveryId":"d","destinationId":"x","payload":{}}`,
	`{"v":-1,"deliveryId":"d","destinationId":"x","payload":{}}`,
	`{"v":123456789,"deliveryId":"d","destinationId":"x","payload":{}}`,
	`{"v":99999999999999999999,"deliveryId":"d","destinationId":"x","payload":{}}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{},"receivedAt":"2026-11-22T10:00:00+01:00"}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{},"receivedAt":"2026-11-22T10:00:00-00:00"}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{},"receivedAt":"2026-11-22T10:00:00.5+23:59"}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{},"receivedAt":"2026-11-22T10:00:00+24:00"}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{},"receivedAt":"2026-11-22 10:00:00Z"}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{},"receivedAt":"2026-11-22T1:00:00Z"}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{},"receivedAt":"2026-11-22T10:00:00,5Z"}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{},"receivedAt":null}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{},"receivedAt":"2026-11-22T10:00:00\u005a"}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{},"receivedAt":0}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{},"receivedAt":""}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{}} x`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{}}{}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{"a":}}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":[1,]}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{"a":1,}}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":"\u12"}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":"\q"}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":[1.]}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":[1e]}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":[-]}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":[tru]}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":[nulll]}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":` + deep(600) + `}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":` + deep(10001) + `}`,
	`{"v":1,"deliveryId":"d","destinationId":"x"}`,
	`{"v":1,"deliveryId":"d","payload":{}}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{}},`,
	`{"v":1,"deliveryId":"d","destinationId":"x",,"payload":{}}`,
	`{"v":1 "deliveryId":"d"}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","receivedAt":"2026-11-22T10:00:00Z","generation":42,"payload":{}}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","generation":-7,"payload":{}}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","generation":999999999,"payload":{}}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","generation":1234567890123,"payload":{}}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","generation":99999999999999999999,"payload":{}}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","generation":null,"payload":{}}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","generation":"3","payload":{}}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","generation":3.5,"payload":{}}`,
	`{"v":1,"deliveryId":"d","destinationId":"x","payload":{},"generation":3}`,
	`{}`,
	`{ }`,
	`[]`,
	`null`,
	`"x"`,
	``,
	` `,
	`{`,
	`{"v"`,
	`{"v":`,
	`{"v":1`,
}

func TestDecodeJobMatchesJSON(t *testing.T) {
	for _, in := range decodeCases {
		t.Run("", func(t *testing.T) { checkDecode(t, []byte(in)) })
	}
	for _, gen := range []int64{0, 1, 123456789} { // what routers write
		j := sampleJob()
		j.Generation = gen
		b, err := EncodeJob(j)
		if err != nil {
			t.Fatal(err)
		}
		checkDecode(t, b)
		if got, err := DecodeJob(b); err != nil || got.Generation != gen {
			t.Fatalf("an encoded job of generation %d: %v, generation %d", gen, err, got.Generation)
		}
	}
}

func TestJobRoundTrip(t *testing.T) {
	in := sampleJob()
	in.Generation = 42
	b, err := EncodeJob(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := DecodeJob(b)
	in.V = JobVersion
	if err != nil || !reflect.DeepEqual(out, in) {
		t.Fatalf("round trip: %v\n got %#v\nwant %#v", err, out, in)
	}
}

// FuzzEncodeJob holds EncodeJob to json.Marshal for any job (the same value).
func FuzzEncodeJob(f *testing.F) {
	j := sampleJob()
	f.Add(j.DeliveryID, j.UpdateID, j.DestinationID, j.ProfileKey, j.ReceivedAt.Unix(), int64(j.ReceivedAt.Nanosecond()), 0, int64(0), []byte(j.Payload))
	f.Add("<&>", "\u2028\xff", "\"\\\n", "é", int64(-62135596800), int64(0), -75, int64(12), []byte(" { \"a\" : \"<\u2029>\" } "))
	f.Add("", "", "", "", int64(253402300800), int64(999999999), 86400, int64(-1), []byte(nil))
	f.Add("d", "u", "x", "k", int64(0), int64(1), 3600, int64(1)<<40, []byte(`[1,"\u00e9",-0.5e3,true,false,null,{}]`))
	f.Fuzz(func(t *testing.T, dlv, upd, dst, key string, sec, nsec int64, offset int, gen int64, payload []byte) {
		j := Job{DeliveryID: dlv, UpdateID: upd, DestinationID: dst, ProfileKey: key,
			ReceivedAt: time.Unix(sec, nsec).In(time.FixedZone("", offset)), Generation: gen, Payload: payload}
		if offset == 0 {
			j.ReceivedAt = j.ReceivedAt.UTC()
		}
		checkEncode(t, j)
	})
}

// FuzzDecodeJob holds DecodeJob to json.Unmarshal for any input (the same job, the same
// inputs refused).
func FuzzDecodeJob(f *testing.F) {
	for _, in := range decodeCases {
		f.Add([]byte(in))
	}
	b, _ := EncodeJob(sampleJob())
	f.Add(b)
	f.Fuzz(func(t *testing.T, in []byte) { checkDecode(t, in) })
}

func BenchmarkEncodeJob(b *testing.B) {
	j := sampleJob()
	for _, bc := range []struct {
		name string
		enc  func(Job) ([]byte, error)
	}{{"json", encodeJobJSON}, {"go-json", EncodeJob}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.enc(j); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeJob(b *testing.B) {
	in, err := EncodeJob(sampleJob())
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		dec  func([]byte) (Job, error)
	}{{"json", decodeJobJSON}, {"go-json", DecodeJob}} {
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
