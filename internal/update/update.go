// Package update owns the envelope that carries an accepted profile update on Kafka, from the
// receiver to the router. The format is versioned and documented in docs/kafka-messages.md.
package update

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	gojson "github.com/goccy/go-json"
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
// JSON (the receiver has parsed it). It is written by hand because the receiver appends every
// accepted profile's envelope into one reused buffer: no allocation, where a codec's Marshal
// makes two (bench/jsoncodec, docs/benchmarks.md "JSON codecs").
func AppendEncode(dst []byte, e Envelope) []byte {
	dst = append(dst, `{"v":`...)
	dst = strconv.AppendInt(dst, int64(e.V), 10)
	dst = append(dst, `,"updateId":`...)
	dst = jsonscan.AppendString(dst, e.UpdateID)
	dst = append(dst, `,"receivedAt":"`...)
	dst = e.ReceivedAt.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","profileKey":`...)
	dst = jsonscan.AppendString(dst, e.ProfileKey)
	dst = append(dst, `,"profile":`...)
	dst = append(dst, e.Profile...)
	return append(dst, '}')
}

// ErrVersion reports an envelope from a newer qgate than this one.
var ErrVersion = errors.New("unsupported envelope version")

// Decode parses an envelope (with github.com/goccy/go-json: it replaced a hand-written decoder
// held to encoding/json, which it matches in speed and, on every input that decoder's tests
// and fuzzer tried, in result; docs/benchmarks.md "JSON codecs") and refuses one of an unknown
// version or without an update ID or profile.
func Decode(b []byte) (Envelope, error) {
	var e Envelope
	if err := gojson.Unmarshal(b, &e); err != nil {
		return Envelope{}, fmt.Errorf("decode envelope: %w", err)
	}
	if e.V < 1 || e.V > Version {
		return Envelope{}, fmt.Errorf("%w: %d", ErrVersion, e.V)
	}
	if e.UpdateID == "" || len(e.Profile) == 0 {
		return Envelope{}, errors.New("decode envelope: missing updateId or profile")
	}
	return e, nil
}
