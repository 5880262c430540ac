package profile

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// This file holds the byte-level JSON scanning shared by SplitBody and Parse. It
// validates strictly (RFC 8259 grammar, and strings must be valid UTF-8) and never
// recurses, so no input can exhaust the stack.

type syntaxError struct {
	msg string
	off int
}

func (e *syntaxError) Error() string {
	return e.msg + " at byte " + strconv.Itoa(e.off)
}

// plain[c] is true for bytes that can appear in a string without special handling.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isWS(c byte) bool { return c == ' ' || c == '\n' || c == '\r' || c == '\t' }

func skipWS(d []byte, i int) int {
	for i < len(d) && isWS(d[i]) {
		i++
	}
	return i
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// scanString scans the string starting at d[i] == '"'. It returns the index just
// past the closing quote and whether the string holds escape sequences.
func scanString(d []byte, i int) (end int, esc bool, err *syntaxError) {
	start := i
	i++
	for {
		// Fast path over ordinary ASCII.
		for i < len(d) && plain[d[i]] {
			i++
		}
		if i >= len(d) {
			return 0, false, &syntaxError{"unterminated string", start}
		}
		switch c := d[i]; {
		case c == '"':
			return i + 1, esc, nil
		case c == '\\':
			esc = true
			if i+1 >= len(d) {
				return 0, false, &syntaxError{"unterminated string", start}
			}
			switch d[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+5 >= len(d) || !isHex(d[i+2]) || !isHex(d[i+3]) || !isHex(d[i+4]) || !isHex(d[i+5]) {
					return 0, false, &syntaxError{"invalid \\u escape in string", i}
				}
				i += 6
			default:
				return 0, false, &syntaxError{"invalid escape in string", i}
			}
		case c < 0x20:
			return 0, false, &syntaxError{"control character in string", i}
		default: // c >= 0x80
			r, size := utf8.DecodeRune(d[i:])
			if r == utf8.RuneError && size == 1 {
				return 0, false, &syntaxError{"invalid UTF-8 in string", i}
			}
			i += size
		}
	}
}

// scanNumber scans the number starting at d[i].
func scanNumber(d []byte, i int) (int, *syntaxError) {
	start := i
	if i < len(d) && d[i] == '-' {
		i++
	}
	switch {
	case i < len(d) && d[i] == '0':
		i++
	case i < len(d) && '1' <= d[i] && d[i] <= '9':
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	default:
		return 0, &syntaxError{"invalid number", start}
	}
	if i < len(d) && d[i] == '.' {
		i++
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return 0, &syntaxError{"invalid number", start}
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		if i >= len(d) || d[i] < '0' || d[i] > '9' {
			return 0, &syntaxError{"invalid number", start}
		}
		for i < len(d) && '0' <= d[i] && d[i] <= '9' {
			i++
		}
	}
	return i, nil
}

// scanLiteral scans true, false or null at d[i].
func scanLiteral(d []byte, i int) (int, *syntaxError) {
	var lit string
	switch d[i] {
	case 't':
		lit = "true"
	case 'f':
		lit = "false"
	default:
		lit = "null"
	}
	if len(d)-i < len(lit) || string(d[i:i+len(lit)]) != lit {
		return 0, &syntaxError{"invalid literal", i}
	}
	return i + len(lit), nil
}

// skipValue validates the JSON value starting at or after d[i] (after optional
// whitespace) and returns the index just past it. It is iterative: nesting depth
// costs one byte of heap per level, never stack.
func skipValue(d []byte, i int) (int, *syntaxError) {
	var buf [32]byte
	stack := buf[:0] // '{' or '[' per open container
	var err *syntaxError
	for {
		// Expect a value.
		i = skipWS(d, i)
		if i >= len(d) {
			return 0, &syntaxError{"unexpected end of input", i}
		}
		switch c := d[i]; c {
		case '{':
			i = skipWS(d, i+1)
			if i < len(d) && d[i] == '}' {
				i++
				break
			}
			stack = append(stack, '{')
			if i, err = skipKey(d, i); err != nil {
				return 0, err
			}
			continue
		case '[':
			i = skipWS(d, i+1)
			if i < len(d) && d[i] == ']' {
				i++
				break
			}
			stack = append(stack, '[')
			continue
		case '"':
			if i, _, err = scanString(d, i); err != nil {
				return 0, err
			}
		case 't', 'f', 'n':
			if i, err = scanLiteral(d, i); err != nil {
				return 0, err
			}
		default:
			if c != '-' && (c < '0' || c > '9') {
				return 0, &syntaxError{"invalid character " + strconv.QuoteRuneToASCII(rune(c)) + " looking for a value", i}
			}
			if i, err = scanNumber(d, i); err != nil {
				return 0, err
			}
		}
		// After a value: close containers or move to the next element.
		for {
			if len(stack) == 0 {
				return i, nil
			}
			i = skipWS(d, i)
			if i >= len(d) {
				return 0, &syntaxError{"unexpected end of input", i}
			}
			top := stack[len(stack)-1]
			c := d[i]
			if c == ',' {
				i++
				if top == '{' {
					if i, err = skipKey(d, skipWS(d, i)); err != nil {
						return 0, err
					}
				}
				break
			}
			if top == '{' && c == '}' || top == '[' && c == ']' {
				i++
				stack = stack[:len(stack)-1]
				continue
			}
			return 0, &syntaxError{"expected ',' or a closing bracket", i}
		}
	}
}

// skipKey scans `"key" :` at d[i] and returns the index past the colon.
func skipKey(d []byte, i int) (int, *syntaxError) {
	if i >= len(d) || d[i] != '"' {
		return 0, &syntaxError{"expected a string key", i}
	}
	i, _, err := scanString(d, i)
	if err != nil {
		return 0, err
	}
	i = skipWS(d, i)
	if i >= len(d) || d[i] != ':' {
		return 0, &syntaxError{"expected ':' after key", i}
	}
	return i + 1, nil
}

// unquote decodes a scanned JSON string including its quotes. It is the slow path,
// used only for strings that hold escape sequences.
func unquote(q []byte) string {
	var s string
	if err := json.Unmarshal(q, &s); err != nil {
		// Unreachable for strings accepted by scanString.
		return string(q[1 : len(q)-1])
	}
	return s
}
