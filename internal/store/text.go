package store

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/fault"
)

// Text from outside — a destination's response excerpt, a reason, an alert's message, a key's
// name, audiences — may hold NUL bytes or bytes that are not UTF-8. PostgreSQL refuses both in
// text columns (SQLSTATE 22021), which once failed every status write that shared a
// transaction with such a row; SQLite stores them and hands them back. The store writes
// cleanText of such values on both dialects, so what it returns is the same valid UTF-8
// without NUL. Identifiers (IDs, profile keys) are not cleaned: two different IDs must never
// become one, so an identifier holding such bytes is refused with ErrInvalidText. Payloads and
// parked jobs are binary columns (BYTEA, BLOB) and keep every byte.

// ErrInvalidText is returned for an identifier that holds a NUL byte or is not valid UTF-8; the
// write it came with changes nothing.
var ErrInvalidText = fault.New(fault.Invalid, "id", "invalid_text", "an identifier holds a NUL byte or is not valid UTF-8")

// cleanText returns s with each NUL byte and each run of bytes that are not UTF-8 replaced by
// U+FFFD. It returns s itself when there is nothing to replace.
func cleanText(s string) string {
	if strings.IndexByte(s, 0) < 0 && utf8.ValidString(s) {
		return s
	}
	return strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "\uFFFD")
}

// checkIDs returns ErrInvalidText, naming the first bad identifier, when one of ids (pairs of
// a field name and a value) holds a NUL byte or is not valid UTF-8.
func checkIDs(ids ...string) error {
	for i := 0; i+1 < len(ids); i += 2 {
		if v := ids[i+1]; strings.IndexByte(v, 0) >= 0 || !utf8.ValidString(v) {
			return fmt.Errorf("%w: %s %q", ErrInvalidText, ids[i], v)
		}
	}
	return nil
}

// checkBatch checks every identifier of b (see checkIDs).
func checkBatch(b delivery.Batch) error {
	for _, u := range b.Updates {
		if err := checkIDs("updateId", u.UpdateID, "profileKey", u.ProfileKey); err != nil {
			return err
		}
	}
	for _, events := range [2][]delivery.Event{b.Routed, b.Events} {
		for _, e := range events {
			if err := checkIDs("deliveryId", e.DeliveryID, "updateId", e.UpdateID, "destinationId", e.DestinationID,
				"emailHash", e.EmailHash, "externalIdHash", e.ExternalIDHash); err != nil {
				return err
			}
		}
	}
	for _, p := range b.Park {
		if err := checkIDs("deliveryId", p.DeliveryID, "destinationId", p.DestinationID, "profileKey", p.ProfileKey); err != nil {
			return err
		}
	}
	for _, id := range b.Unpark {
		if err := checkIDs("deliveryId", id); err != nil {
			return err
		}
	}
	for _, a := range b.Alerts {
		if err := checkIDs("alertId", a.ID, "destinationId", a.DestinationID); err != nil {
			return err
		}
	}
	return nil
}

// cleanTexts returns vs with cleanText applied to each (vs itself when none changes).
func cleanTexts(vs []string) []string {
	var out []string
	for i, v := range vs {
		c := cleanText(v)
		if c != v && out == nil {
			out = append(make([]string, 0, len(vs)), vs[:i]...)
		}
		if out != nil {
			out = append(out, c)
		}
	}
	if out == nil {
		return vs
	}
	return out
}
