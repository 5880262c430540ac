package jsonscan

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// htmlSafe marks the ASCII bytes encoding/json writes unescaped in a string (it escapes <, >
// and & as well as ", \ and control characters).
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

const (
	hexDigits = "0123456789abcdef"
	// The control characters with a short escape, and the letters of their escapes.
	shortControls = "\b\f\n\r\t"
	shortLetters  = "bfnrt"
)

// AppendString appends s as a JSON string exactly as encoding/json writes it (HTML-safe):
// ", \ and the control characters escaped, <, >, &, U+2028 and U+2029 too, and each byte
// that is not UTF-8 written as \ufffd.
func AppendString[S []byte | string](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf && htmlSafe[c] {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = appendEscape(append(dst, s[start:i]...), c)
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(len(s), i+utf8.UTFMax)]))
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendEscape appends the escape encoding/json writes for the ASCII byte c. (Apart from
// AppendString's loop, which it keeps small: that loop runs for every byte.)
func appendEscape(dst []byte, c byte) []byte {
	switch k := strings.IndexByte(shortControls, c); {
	case c == '\\', c == '"':
		return append(dst, '\\', c)
	case k >= 0:
		return append(dst, '\\', shortLetters[k])
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
}

// Unquote appends the value of the JSON string s (its bytes between the quotes, which
// ScanString has accepted) to dst, as encoding/json decodes it: escapes resolved, bytes that
// are not UTF-8 and lone surrogates replaced by U+FFFD.
func Unquote(dst, s []byte) []byte {
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == '\\' && s[i+1] == 'u':
			r := hex4(s[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				r2 := utf8.RuneError
				if len(s)-i >= 6 && s[i] == '\\' && s[i+1] == 'u' {
					r2 = hex4(s[i+2:])
				}
				if r = utf16.DecodeRune(r, r2); r != utf8.RuneError {
					i += 6
				}
			}
			dst = utf8.AppendRune(dst, r)
		case c == '\\':
			c = s[i+1] // ", \, / or a letter of shortLetters
			if k := strings.IndexByte(shortLetters, c); k >= 0 {
				c = shortControls[k]
			}
			dst = append(dst, c)
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, c)
			i++
		default:
			r, size := utf8.DecodeRune(s[i:])
			dst = utf8.AppendRune(dst, r)
			i += size
		}
	}
	return dst
}
