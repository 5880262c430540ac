package jsonscan

import (
	"encoding/json"
	"strings"
	"time"
)

// A Field is a member of the JSON object Decode reads, and where its value goes: one of Int,
// String, Time and Raw is set.
type Field struct {
	Name string
	// An integer of at most 9 digits, without fraction or exponent.
	Int *int
	// A string of printable ASCII without escapes (IDs, keys).
	String *string
	// A string of printable ASCII that time.Time.UnmarshalJSON accepts.
	Time *time.Time
	// Any value nested no deeper than MaxDepth, copied as it is.
	Raw *json.RawMessage
}

// Decode reads b, one JSON object with nothing but whitespace around it, into fields (at most
// 64) as json.Unmarshal does into a struct with those members, if it can. It reports false,
// with the fields' values unspecified, for any b it does not decode exactly as json.Unmarshal
// does, which the caller then hands to json.Unmarshal: keys other than the fields' names
// spelled exactly, escaped or not printable ASCII (json.Unmarshal skips unknown keys and
// matches names without regard to case), a key that comes twice (json.Unmarshal keeps the
// last), null or values other than a Field takes, and input that is not valid JSON.
//
// The values are set as json.Unmarshal sets them: time.Time.UnmarshalJSON of the literal, a
// copy of the bytes for a json.RawMessage, and the strings with one allocation for them all.
// Keys are looked for from the field after the previous key's, so an object written with its
// members in the order of fields costs one comparison a key.
func Decode(b []byte, fields []Field) bool {
	i := SkipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	var (
		seen uint64
		f    int
		more bool
		strs stringSet
	)
	for i, more = Open(b, i); more; i, more = Next(b, i, '}') {
		k0 := i + 1
		if i = plainString(b, i); i < 0 {
			return false
		}
		if f = find(fields, b[k0:i-1], f); f < 0 || seen&(1<<f) != 0 {
			return false
		}
		seen |= 1 << f
		if i = Colon(b, i); i < 0 {
			return false
		}
		if i = fields[f].read(b, i, f, &strs); i < 0 {
			return false
		}
		f++
	}
	if i < 0 || SkipSpace(b, i) != len(b) {
		return false
	}
	strs.set(b, fields)
	return true
}

// find returns the index of the field named key, looking from fields[from] on and then from
// the start, or -1.
func find(fields []Field, key []byte, from int) int {
	for k := range fields {
		f := from + k
		if f >= len(fields) {
			f -= len(fields)
		}
		if fields[f].Name == string(key) {
			return f
		}
	}
	return -1
}

// read reads the value at b[i] of the field, fields[k] of Decode, noting a string in strs, and
// returns its end, or -1.
func (f *Field) read(b []byte, i, k int, strs *stringSet) int {
	i0 := i
	switch {
	case f.Int != nil:
		*f.Int, i = smallInt(b, i)
	case f.String != nil:
		i = strs.read(b, i, k)
	case f.Time != nil:
		// What encoding/json does: time.Time is a json.Unmarshaler, handed the raw literal.
		if i = plainString(b, i); i >= 0 && f.Time.UnmarshalJSON(b[i0:i]) != nil {
			return -1
		}
	case f.Raw != nil:
		// As json.RawMessage.UnmarshalJSON: a copy of the value's bytes as they are.
		if i = ScanValue(b, i, false); i >= 0 {
			*f.Raw = append(json.RawMessage(nil), b[i0:i]...)
		}
	default:
		return -1
	}
	return i
}

// plainString returns the end of the JSON string at b[i] if it holds only printable ASCII
// without escapes (its value is then its bytes between the quotes), or -1.
func plainString(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1
		case c < 0x20, c >= 0x7f, c == '\\':
			return -1
		}
	}
	return -1
}

// smallInt reads a JSON integer of at most 9 digits at b[i], which encoding/json decodes into
// an int as it is, and returns it and its end; -1 for anything else (a fraction, an exponent,
// another type), which may still be valid.
func smallInt(b []byte, i int) (int, int) {
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	i0 := i
	n := 0
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		n = n*10 + int(b[i]-'0')
		i++
	}
	if d := i - i0; d == 0 || d > 9 || (d > 1 && b[i0] == '0') {
		return 0, -1
	}
	if neg {
		n = -n
	}
	return n, i
}

// stringSet makes the plain strings of one input into Go strings with one allocation for them
// all: read notes where each is and the field it goes in, set sets them. (It notes the field's
// index rather than its String: a pointer kept here would move the caller's struct to the heap.)
type stringSet struct {
	spans [8]span
	n     int
}

type span struct{ lo, hi, field int }

// read notes the plain string at b[i], for set to store its value in the field with index
// field, and returns its end; -1 if it is not a plain string, or read has noted as many
// strings as it can.
func (s *stringSet) read(b []byte, i, field int) int {
	i0 := i
	if i = plainString(b, i); i < 0 || s.n == len(s.spans) {
		return -1
	}
	s.spans[s.n] = span{i0 + 1, i - 1, field}
	s.n++
	return i
}

// set stores the values of the strings read noted in b in their fields.
func (s *stringSet) set(b []byte, fields []Field) {
	spans := s.spans[:s.n]
	n := 0
	for _, sp := range spans {
		n += sp.hi - sp.lo
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, sp := range spans {
		sb.Write(b[sp.lo:sp.hi])
	}
	all := sb.String()
	for _, sp := range spans {
		*fields[sp.field].String, all = all[:sp.hi-sp.lo], all[sp.hi-sp.lo:]
	}
}
