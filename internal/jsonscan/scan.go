// Package jsonscan reads and writes JSON by hand for router.Shape, the one hot path where that
// still pays (issue #12, docs/benchmarks.md "JSON codecs"): the shaper built on it writes a
// delivery's payload in ~2-4 µs with 3-6 allocations, where decoding the profile into maps and
// marshalling them takes 11-34 µs and 78-219 allocations with any codec measured (encoding/json,
// goccy/go-json, segmentio/encoding, sonic). The envelope and job codecs, which once used it
// too, are github.com/goccy/go-json now; the envelope's writer still quotes with AppendString.
// It holds:
//
//   - the steps through an object or array (Open, Colon, Next) for a caller that builds its own
//     tree, and the scalars and strings in them: ScanLiteral, ScanString;
//   - strings written and read as encoding/json writes and reads them: AppendString, Unquote.
//
// None of it is a JSON codec. Each function handles a part of JSON and reports (-1) the input
// it does not handle rather than guess; the shaper falls back to encoding/json for that input.
// Nothing here accepts what encoding/json rejects. The tests here (FuzzScan), and the shaper's
// (FuzzShape), hold it to encoding/json.
//
// The functions that read take the input b and an index i in it, and return the index just
// after what they read, or -1.
package jsonscan

import "unicode/utf8"

// MaxDepth bounds the nesting the shaper built on Open and Next follows (encoding/json allows
// 10000); deeper values are left to encoding/json.
const MaxDepth = 512

// SkipSpace returns the index of the first byte at or after b[i] that is not JSON whitespace.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\r' || b[i] == '\t') {
		i++
	}
	return i
}

// Open starts the object or array at b[i] (b[i] is '{' or '['): it returns the index of its
// first element (an object's: of the key) and true, or, if it is empty, the index after it
// and false.
func Open(b []byte, i int) (int, bool) {
	end := b[i] + 2 // '}' or ']'
	if i = SkipSpace(b, i+1); i < len(b) && b[i] == end {
		return i + 1, false
	}
	return i, true
}

// Colon returns the index of an object member's value, after its key that ends at b[i], or -1.
func Colon(b []byte, i int) int {
	if i = SkipSpace(b, i); i >= len(b) || b[i] != ':' {
		return -1
	}
	return SkipSpace(b, i+1)
}

// Next goes on after the element that ends at b[i] in the object or array that ends with the
// byte end ('}' or ']'): it returns the index of the next element and true, or the index after
// the object or array and false, or -1 and false.
func Next(b []byte, i int, end byte) (int, bool) {
	if i = SkipSpace(b, i); i < len(b) {
		switch b[i] {
		case ',':
			return SkipSpace(b, i+1), true
		case end:
			return i + 1, false
		}
	}
	return -1, false
}

// ScanLiteral returns the end of the JSON number, true, false or null at b[i], or -1 if there
// is none there. What follows it is the caller's to check.
func ScanLiteral(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '-', '0' <= c && c <= '9':
		return scanNumber(b, i)
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	}
	return -1
}

func literal(b []byte, i int, lit string) int {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return -1
	}
	return i + len(lit)
}

// scanNumber returns the end of the JSON number at b[i], or -1. What follows it is the
// caller's to check.
func scanNumber(b []byte, i int) int {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return -1
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i = digits(b, i+1)
	default:
		return -1
	}
	if i < len(b) && b[i] == '.' {
		if i = digits(b, i+1); b[i-1] == '.' {
			return -1
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		i0 := i
		if i = digits(b, i); i == i0 {
			return -1
		}
	}
	return i
}

func digits(b []byte, i int) int {
	for i < len(b) && '0' <= b[i] && b[i] <= '9' {
		i++
	}
	return i
}

// StringFlags say how a JSON string's raw bytes differ from its value, and from what
// encoding/json writes for that value. A string with none has a value that is its raw bytes
// between the quotes, and encoding/json writes that value as those bytes, quotes included.
type StringFlags uint8

const (
	// Escaped: the string holds a backslash escape.
	Escaped StringFlags = 1 << iota
	// InvalidUTF8: it holds bytes that are not UTF-8 (encoding/json reads each as U+FFFD).
	InvalidUTF8
	// HTMLUnsafe: it holds <, >, &, U+2028 or U+2029, which encoding/json escapes when it
	// writes a string.
	HTMLUnsafe
)

// ScanString returns the end of the JSON string at b[i] and its flags, or -1.
func ScanString(b []byte, i int) (int, StringFlags) {
	if end := plainEnd(b, i); end >= 0 {
		return end, 0
	}
	return scanString(b, i)
}

// plainEnd returns the end of the JSON string at b[i] if it holds only ASCII that encoding/json
// writes as it is (most strings), or -1. It is small enough for Go to inline, so that ScanString
// reads such strings without a call.
func plainEnd(b []byte, i int) int {
	if i >= len(b) || b[i] != '"' {
		return -1
	}
	for i++; i < len(b) && b[i] < utf8.RuneSelf && htmlSafe[b[i]]; i++ {
	}
	if i < len(b) && b[i] == '"' {
		return i + 1
	}
	return -1
}

// scanString is ScanString for any string.
func scanString(b []byte, i int) (int, StringFlags) {
	if i >= len(b) || b[i] != '"' {
		return -1, 0
	}
	var f StringFlags
	for i++; i < len(b); i++ {
		// The common case first, falling through (scanning is up to twice as slow with this
		// branch taken for every byte).
		c := b[i]
		if c < utf8.RuneSelf && htmlSafe[c] {
			continue
		}
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRune(b[i:])
			switch {
			case r == utf8.RuneError && size == 1:
				f |= InvalidUTF8
			case r == '\u2028' || r == '\u2029':
				f |= HTMLUnsafe
			}
			i += size - 1
			continue
		}
		switch {
		case c == '"':
			return i + 1, f
		case c < 0x20:
			return -1, 0
		case c == '\\':
			f |= Escaped
			if i++; i >= len(b) {
				return -1, 0
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if len(b)-i <= 4 || hex4(b[i+1:i+5]) < 0 {
					return -1, 0
				}
				i += 4
			default:
				return -1, 0
			}
		default: // <, > or &
			f |= HTMLUnsafe
		}
	}
	return -1, 0
}

// hex4 decodes four hex digits, or returns -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}
