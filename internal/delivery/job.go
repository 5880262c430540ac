package delivery

// A hand-written JSON codec for Job. CPU profiles of qgate under load put json.Unmarshal of
// jobs (DecodeJob) at ~2.4% and json.Marshal (EncodeJob) at ~1.1% of total CPU: reflection,
// a string allocation per field, and encoding/json's scanner run over the payload byte by
// byte. The codec below, built on internal/jsonscan, writes and reads the jobs qgate itself
// writes, byte for byte as encoding/json does. Anything it does not fully understand
// (unknown, duplicated or differently spelled fields, escapes or non-ASCII in IDs, null or
// unexpected types, a payload json.Marshal would compact or escape, times RFC 3339 cannot
// hold) goes through encoding/json instead, so behaviour, errors included, stays exactly that
// of encoding/json. FuzzEncodeJob and FuzzDecodeJob check it against encoding/json.

import (
	"strconv"
	"time"

	"github.com/qgate/qgate/internal/jsonscan"
)

// appendJob appends json.Marshal(j) to dst. It reports false, with dst in an unspecified
// state, for a job it does not encode exactly as json.Marshal does: an empty payload (nil
// marshals as null, empty as an error), a payload json.Marshal would rewrite or reject (it
// compacts a json.RawMessage and escapes <, >, &, U+2028 and U+2029 in it), or a time that
// time.Time.MarshalJSON refuses.
func appendJob(dst []byte, j *Job) ([]byte, bool) {
	if len(j.Payload) == 0 || jsonscan.ScanValue(j.Payload, 0, true) != len(j.Payload) {
		return dst, false
	}
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(j.V), 10)
	dst = append(dst, `,"deliveryId":`...)
	dst = jsonscan.AppendString(dst, j.DeliveryID)
	dst = append(dst, `,"updateId":`...)
	dst = jsonscan.AppendString(dst, j.UpdateID)
	dst = append(dst, `,"destinationId":`...)
	dst = jsonscan.AppendString(dst, j.DestinationID)
	dst = append(dst, `,"profileKey":`...)
	dst = jsonscan.AppendString(dst, j.ProfileKey)
	dst = append(dst, `,"receivedAt":"`...)
	n := len(dst)
	dst = j.ReceivedAt.AppendFormat(dst, time.RFC3339Nano)
	if !strictRFC3339(dst[n:]) {
		return dst, false
	}
	dst = append(dst, '"')
	if j.Generation != 0 {
		dst = append(dst, `,"generation":`...)
		dst = strconv.AppendInt(dst, j.Generation, 10)
	}
	dst = append(dst, `,"payload":`...)
	dst = append(dst, j.Payload...)
	return append(dst, '}'), true
}

// jobSize is room for the encoding of j, unless its strings need escaping.
func jobSize(j *Job) int {
	return len(`{"v":,"deliveryId":"","updateId":"","destinationId":"","profileKey":"","receivedAt":"","generation":,"payload":}`) +
		40 + len(j.DeliveryID) + len(j.UpdateID) + len(j.DestinationID) + len(j.ProfileKey) +
		len(time.RFC3339Nano) + len(j.Payload)
}

// strictRFC3339 repeats the checks of time.Time.MarshalJSON on t.AppendFormat(RFC3339Nano):
// a year of exactly four digits and a zone offset under 24 hours.
func strictRFC3339(b []byte) bool {
	if len(b) < len("2006-01-02T15:04:05Z") || b[len("2006")] != '-' {
		return false
	}
	if b[len(b)-1] == 'Z' {
		return true
	}
	c := b[len(b)-len("Z07:00")]
	h := b[len(b)-len("07:00"):]
	return !('0' <= c && c <= '9') && 10*(h[0]-'0')+(h[1]-'0') < 24
}

// decodeJob is json.Unmarshal(b, &j) for the jobs qgate writes. It reports false for any
// input it does not decode exactly as json.Unmarshal does (see the top of this file); the
// caller then uses json.Unmarshal.
func decodeJob(b []byte) (Job, bool) {
	var j Job
	var gen int // at most 9 digits here; a larger generation goes through json.Unmarshal
	// The members in the order appendJob writes them.
	if !jsonscan.Decode(b, []jsonscan.Field{
		{Name: "v", Int: &j.V}, {Name: "deliveryId", String: &j.DeliveryID}, {Name: "updateId", String: &j.UpdateID},
		{Name: "destinationId", String: &j.DestinationID}, {Name: "profileKey", String: &j.ProfileKey},
		{Name: "receivedAt", Time: &j.ReceivedAt}, {Name: "generation", Int: &gen}, {Name: "payload", Raw: &j.Payload},
	}) {
		return Job{}, false
	}
	j.Generation = int64(gen)
	return j, true
}
