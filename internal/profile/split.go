package profile

import (
	"encoding/json"
	"fmt"
)

// DefaultMaxProfiles is the batch size SplitBody allows when given maxProfiles <= 0.
const DefaultMaxProfiles = 500

// SplitBody splits a request body into profile objects: either one profile object, or
// {"profiles": [ ... ]} (an object whose ONLY key is "profiles" with an array value).
// Errors: ErrMalformed (wrapped with detail) for invalid JSON / not an object / "profiles"
// not an array; ErrTooMany when the array holds more than maxProfiles (<= 0 means
// DefaultMaxProfiles); ErrEmpty for an empty array.
// Each returned element is the raw bytes of that array element, a sub-slice of body
// (it may be a non-object; Parse then reports code "not_an_object" at path "").
func SplitBody(body []byte, maxProfiles int) ([]json.RawMessage, error) {
	if maxProfiles <= 0 {
		maxProfiles = DefaultMaxProfiles
	}
	if out, ok := splitBatch(body, maxProfiles); ok {
		return out, nil
	}
	return splitGeneral(body, maxProfiles)
}

// splitGeneral is SplitBody for any body: it validates the whole body first, then splits.
func splitGeneral(body []byte, maxProfiles int) ([]json.RawMessage, error) {
	start := skipWS(body, 0)
	if start >= len(body) {
		return nil, fmt.Errorf("%w: body is empty", ErrMalformed)
	}
	if body[start] != '{' {
		return nil, fmt.Errorf("%w: body must be a JSON object", ErrMalformed)
	}
	end, serr := skipValue(body, start)
	if serr != nil {
		return nil, fmt.Errorf("%w: invalid JSON: %v", ErrMalformed, serr)
	}
	if t := skipWS(body, end); t != len(body) {
		return nil, fmt.Errorf("%w: invalid JSON: unexpected data after the top-level value at byte %d", ErrMalformed, t)
	}
	single := []json.RawMessage{body[start:end]}

	// The body is valid JSON from here on: the scans below cannot fail.
	i := skipWS(body, start+1)
	if body[i] != '"' {
		return single, nil // {}
	}
	kend, esc, _ := scanString(body, i)
	if !keyIs(body[i:kend], esc, "profiles") {
		return single, nil
	}
	v := skipWS(body, skipWS(body, kend)+1)
	vend, _ := skipValue(body, v)
	if body[skipWS(body, vend)] != '}' {
		return single, nil // more keys than "profiles": a profile with a "profiles" attribute
	}
	if body[v] != '[' {
		return nil, fmt.Errorf(`%w: "profiles" must be an array`, ErrMalformed)
	}
	var out []json.RawMessage
	i = skipWS(body, v+1)
	if body[i] == ']' {
		return nil, fmt.Errorf(`%w: "profiles" is an empty array`, ErrEmpty)
	}
	for {
		e, _ := skipValue(body, i)
		if len(out) == maxProfiles {
			return nil, fmt.Errorf("%w: more than %d profiles", ErrTooMany, maxProfiles)
		}
		if out == nil {
			out = make([]json.RawMessage, 0, 16)
		}
		out = append(out, body[i:e])
		i = skipWS(body, e)
		if body[i] == ']' {
			return out, nil
		}
		i = skipWS(body, i+1) // ','
	}
}

// keyIs reports whether the scanned string q (with quotes) equals s.
func keyIs(q []byte, esc bool, s string) bool {
	if !esc {
		return string(q[1:len(q)-1]) == s
	}
	return unquote(q) == s
}

// splitBatch is SplitBody's one-pass path for the common body, {"profiles": [ ... ]} with at
// most maxProfiles elements: it validates and splits in a single scan. It reports false for
// anything else (another shape, invalid JSON, an empty or too long array), and SplitBody then
// takes its general path, which finds the same result and the same error as before.
func splitBatch(body []byte, maxProfiles int) ([]json.RawMessage, bool) {
	i := skipWS(body, 0)
	if i >= len(body) || body[i] != '{' {
		return nil, false
	}
	i = skipWS(body, i+1)
	if i >= len(body) || body[i] != '"' {
		return nil, false
	}
	kend, esc, err := scanString(body, i)
	if err != nil || !keyIs(body[i:kend], esc, "profiles") {
		return nil, false
	}
	i = skipWS(body, kend)
	if i >= len(body) || body[i] != ':' {
		return nil, false
	}
	i = skipWS(body, i+1)
	if i >= len(body) || body[i] != '[' {
		return nil, false
	}
	i = skipWS(body, i+1)
	if i >= len(body) || body[i] == ']' {
		return nil, false
	}
	out := make([]json.RawMessage, 0, 16)
	for {
		if len(out) == maxProfiles {
			return nil, false
		}
		e, err := skipValue(body, i)
		if err != nil {
			return nil, false
		}
		out = append(out, body[i:e])
		i = skipWS(body, e)
		if i >= len(body) {
			return nil, false
		}
		if body[i] == ']' {
			break
		}
		if body[i] != ',' {
			return nil, false
		}
		i = skipWS(body, i+1)
	}
	// Only "profiles", and nothing after the object.
	i = skipWS(body, i+1)
	if i >= len(body) || body[i] != '}' || skipWS(body, i+1) != len(body) {
		return nil, false
	}
	return out, true
}
