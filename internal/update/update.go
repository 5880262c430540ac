// Package update owns the envelope that carries an accepted profile update on Kafka, from the
// receiver to the router. The format is versioned and documented in docs/kafka-messages.md.
package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"

	"github.com/qgate/qgate/internal/jsonscan"
)

// Version is the envelope format this build writes. Readers accept versions up to it.
const Version = 1

// Envelope is the value of a message on the profile-updates topic. Its key is ProfileKey.
type Envelope struct {
	V          int             `json:"v"`
	UpdateID   string          `json:"updateId"`
	ReceivedAt time.Time       `json:"receivedAt"`
	ProfileKey string          `json:"profileKey"`
	Profile    json.RawMessage `json:"profile"`
}

// NewID returns a new update ID: a UUIDv7, so IDs sort by the time they were made.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// AppendEncode appends the JSON encoding of e to dst without reflection. e.Profile must be valid
// JSON (the receiver has parsed it); IDs and keys are generated ASCII.
func AppendEncode(dst []byte, e Envelope) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(e.V), 10)
	dst = append(dst, `,"updateId":`...)
	dst = strconv.AppendQuote(dst, e.UpdateID)
	dst = append(dst, `,"receivedAt":"`...)
	dst = e.ReceivedAt.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","profileKey":`...)
	dst = strconv.AppendQuote(dst, e.ProfileKey)
	dst = append(dst, `,"profile":`...)
	dst = append(dst, e.Profile...)
	return append(dst, '}')
}

// ErrVersion reports an envelope from a newer qgate than this one.
var ErrVersion = errors.New("unsupported envelope version")

// Decode parses an envelope as json.Unmarshal does. The envelopes qgate writes (AppendEncode)
// are decoded by hand (decode: json.Unmarshal of envelopes was ~1.7% of qgate's CPU); any
// other input goes through json.Unmarshal.
func Decode(b []byte) (Envelope, error) {
	e, ok := decode(b)
	if !ok {
		return unmarshal(b)
	}
	return check(e)
}

// unmarshal is Decode with encoding/json: its fallback, and the definition it must match.
func unmarshal(b []byte) (Envelope, error) {
	var e Envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return Envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	return check(e)
}

// check refuses a decoded envelope of an unknown version or without an update ID or profile.
func check(e Envelope) (Envelope, error) {
	if e.V < 1 || e.V > Version {
		return Envelope{}, fmt.Errorf("%w: %d", ErrVersion, e.V)
	}
	if e.UpdateID == "" || len(e.Profile) == 0 {
		return Envelope{}, errors.New("decode envelope: missing updateId or profile")
	}
	return e, nil
}

// decode is json.Unmarshal(b, &e) for the envelopes qgate writes, without reflection and with
// one allocation for both IDs. It reports false for any input it does not decode exactly as
// json.Unmarshal does, which the caller then hands to json.Unmarshal: unknown, duplicated or
// differently spelled fields (json.Unmarshal ignores the unknown and matches names without
// regard to case), escapes or non-ASCII in the IDs or the time, null or unexpected types,
// input that is not one valid JSON object, or a profile nested deeper than jsonscan.MaxDepth.
func decode(b []byte) (Envelope, bool) {
	var e Envelope
	// The members in the order AppendEncode writes them.
	fields := []jsonscan.Field{{Name: "v", Int: &e.V}, {Name: "updateId", String: &e.UpdateID},
		{Name: "receivedAt", Time: &e.ReceivedAt}, {Name: "profileKey", String: &e.ProfileKey}, {Name: "profile", Raw: &e.Profile}}
	if !jsonscan.Decode(b, fields) {
		return Envelope{}, false
	}
	return e, true
}
