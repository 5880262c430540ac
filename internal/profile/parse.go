package profile

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Parse decodes and validates one profile object. On any error it returns nil and every
// FieldError found (in document order, at most MaxErrors). A JSON syntax error is
// reported alone, as CodeInvalidJSON at path "". Limits of depth and attribute count
// stop the validation at the first violation. Zero fields of lim take their defaults.
//
// Parse makes a single pass over raw without building a generic tree. Profile.Raw is a
// copy of raw without surrounding whitespace, so raw may be reused afterwards.
func Parse(raw []byte, lim Limits) (*Profile, []FieldError) {
	p := parsers.Get().(*parser)
	defer p.release()
	p.d, p.lim = raw, lim.withDefaults()
	start := skipWS(raw, 0)
	if start >= len(raw) {
		return nil, []FieldError{{Code: CodeInvalidJSON, Message: "The profile is empty; expected a JSON object."}}
	}
	if raw[start] != '{' {
		end, err := skipValue(raw, start)
		if err != nil || skipWS(raw, end) != len(raw) {
			return nil, []FieldError{{Code: CodeInvalidJSON, Message: "The profile is not valid JSON."}}
		}
		return nil, []FieldError{{Code: CodeNotAnObject, Message: "The profile must be a JSON object, not " + kindOf(raw[start]) + "."}}
	}
	p.i = start
	p.profile()
	if !p.abort {
		if t := skipWS(raw, p.i); t != len(raw) {
			p.syntax(&syntaxError{"unexpected data after the profile object", t})
		}
	}
	if len(p.errs) > 0 {
		return nil, p.errs
	}
	prof := &Profile{
		Raw:         bytes.Clone(raw[start:p.i]),
		Identities:  p.ids,
		Memberships: p.mships,
	}
	slices.SortStableFunc(prof.Identities, func(a, b Identity) int { return strings.Compare(a.Namespace, b.Namespace) })
	slices.SortFunc(prof.Memberships, func(a, b Membership) int { return strings.Compare(a.AudienceID, b.AudienceID) })
	return prof, nil
}

func kindOf(c byte) string {
	switch c {
	case '[':
		return "an array"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// key is an object key as scanned: its bytes including the quotes.
type key struct {
	q   []byte
	esc bool
}

func (k key) is(s string) bool { return keyIs(k.q, k.esc, s) }

func (k key) String() string {
	if k.esc {
		return unquote(k.q)
	}
	return string(k.q[1 : len(k.q)-1])
}

// seenKey is a key of an open object: its bytes p.d[off:end] (quotes included) and, when it
// was escaped, the index of its decoded form in p.decs, so duplicate detection decodes each
// escaped key once. It holds no pointers: appending one costs no GC write barrier.
type seenKey struct {
	off, end int
	dec      int // index in p.decs, or -1 when the key has no escapes
}

// sameKey reports whether the seen key s equals k (dec: k decoded, when k.esc).
func (p *parser) sameKey(s seenKey, k key, dec string) bool {
	q := p.d[s.off:s.end]
	if s.dec < 0 && !k.esc {
		return bytes.Equal(q, k.q)
	}
	a, b := string(q[1:len(q)-1]), dec
	if s.dec >= 0 {
		a = p.decs[s.dec]
	}
	if !k.esc {
		b = string(k.q[1 : len(k.q)-1])
	}
	return a == b
}

// camel reports whether the key matches ^[a-z][a-zA-Z0-9]*$.
func (k key) camel() bool {
	if k.esc {
		return isCamel(unquote(k.q))
	}
	return isCamel(string(k.q[1 : len(k.q)-1]))
}

func isCamel(s string) bool {
	if s == "" || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return false
		}
	}
	return true
}

// seg is one step of the current path: an object key, p.d[off:end] with its quotes, or an
// array index. It holds no pointers: appending one costs no GC write barrier.
type seg struct {
	off, end int
	idx      int
	esc      bool
	arr      bool // an array index
}

var (
	keyID     = key{q: []byte(`"id"`)}
	keyUps    = key{q: []byte(`"ups"`)}
	keyStatus = key{q: []byte(`"status"`)}
	keyLQT    = key{q: []byte(`"lastQualificationTime"`)}
)

// parsers recycles parsers: their path and key stacks are the only per-call
// scratch memory.
var parsers = sync.Pool{New: func() any { return new(parser) }}

// release resets p and puts it back in the pool. The error and result slices
// belong to the caller and are dropped, not reused.
func (p *parser) release() {
	clear(p.decs)
	*p = parser{path: p.path[:0], objKeys: p.objKeys[:0], decs: p.decs[:0]}
	parsers.Put(p)
}

type parser struct {
	d     []byte
	i     int
	lim   Limits
	errs  []FieldError
	abort bool

	path    []seg
	objKeys []seenKey // keys of the open objects, for duplicate detection
	decs    []string  // decoded forms of escaped keys in objKeys
	keys    int       // keys seen so far, all depths

	nIdents int
	ids     []Identity
	mships  []Membership
}

func (p *parser) pathString() string {
	var b strings.Builder
	for n, s := range p.path {
		if s.arr {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.idx))
			b.WriteByte(']')
			continue
		}
		if n > 0 {
			b.WriteByte('.')
		}
		b.WriteString(key{q: p.d[s.off:s.end], esc: s.esc}.String())
	}
	return b.String()
}

func (p *parser) fail(code, msg string) {
	if p.abort {
		return
	}
	p.failPath(p.pathString(), code, msg)
}

func (p *parser) failPath(path, code, msg string) {
	p.errs = append(p.errs, FieldError{Path: path, Code: code, Message: msg})
	if len(p.errs) >= MaxErrors {
		p.abort = true
	}
}

// failAt reports an error at the current path extended by k.
func (p *parser) failAt(k key, code, msg string) {
	if p.abort {
		return
	}
	path := p.pathString()
	if len(p.path) > 0 {
		path += "."
	}
	p.failPath(path+k.String(), code, msg)
}

// fatal reports an error and stops validation.
func (p *parser) fatal(code, msg string) {
	p.fail(code, msg)
	p.abort = true
}

// syntax replaces every error found so far by one invalid_json error and stops.
func (p *parser) syntax(e *syntaxError) {
	p.errs = []FieldError{{Code: CodeInvalidJSON, Message: "The profile is not valid JSON: " + e.Error() + "."}}
	p.abort = true
}

func (p *parser) eof() {
	p.syntax(&syntaxError{"unexpected end of input", len(p.d)})
}

// keyMode says how members treats the keys of an object.
type keyMode uint8

const (
	modeCount      keyMode = iota // keys count toward MaxAttributes
	modeAttr                      // keys count and must be camelCase
	modeAudience                  // audience IDs: bounded by MaxAudiences instead
	modeMembership                // status and lastQualificationTime do not count; other keys do
)

// members walks the object at p.d[p.i] == '{' at nesting depth depth, calling fn
// for each member with p.i at the start of the member's value; fn must consume the
// value. mode says how keys are counted and checked.
func (p *parser) members(depth int, mode keyMode, fn func(k key)) {
	if depth > p.lim.MaxDepth {
		p.fatal(CodeTooDeep, "Objects and arrays are nested more than "+strconv.Itoa(p.lim.MaxDepth)+" levels deep.")
		return
	}
	d := p.d
	p.i = skipWS(d, p.i+1)
	if p.i < len(d) && d[p.i] == '}' {
		p.i++
		return
	}
	base := len(p.objKeys)
	var seen map[string]struct{}
	for {
		if p.i >= len(d) || d[p.i] != '"' {
			p.syntax(&syntaxError{"expected a string key", p.i})
			return
		}
		end, esc, err := scanString(d, p.i)
		if err != nil {
			p.syntax(err)
			return
		}
		k := key{q: d[p.i:end], esc: esc}
		p.path = append(p.path, seg{off: p.i, end: end, esc: esc})
		p.i = end
		if mode != modeAudience && (mode != modeMembership || !k.is("status") && !k.is("lastQualificationTime")) {
			p.keys++
		}
		if p.keys > p.lim.MaxAttributes {
			p.fatal(CodeTooManyAttributes, "The profile has more than "+strconv.Itoa(p.lim.MaxAttributes)+" attributes (keys at all depths).")
			return
		}
		// Duplicate keys: linear scan for small objects, a map beyond 32 keys.
		dup := false
		if seen == nil {
			var dec string
			sk := seenKey{off: p.path[len(p.path)-1].off, end: p.path[len(p.path)-1].end, dec: -1}
			if k.esc {
				dec = unquote(k.q)
				sk.dec = len(p.decs)
				p.decs = append(p.decs, dec)
			}
			for _, o := range p.objKeys[base:] {
				if p.sameKey(o, k, dec) {
					dup = true
					break
				}
			}
			p.objKeys = append(p.objKeys, sk)
			if len(p.objKeys)-base > 32 {
				seen = make(map[string]struct{}, 64)
				for _, o := range p.objKeys[base:] {
					seen[key{q: p.d[o.off:o.end], esc: o.dec >= 0}.String()] = struct{}{}
				}
			}
		} else {
			s := k.String()
			_, dup = seen[s]
			seen[s] = struct{}{}
		}
		if dup {
			p.fail(CodeDuplicateKey, "The key appears more than once in the same object.")
		}
		p.checkLen(k.q, k.esc, "key")
		if mode == modeAttr && !k.camel() {
			p.fail(CodeInvalidAttributeName, "Attribute name "+strconv.Quote(k.String())+" is not camelCase; names must match ^[a-z][a-zA-Z0-9]*$.")
		}
		p.i = skipWS(d, p.i)
		if p.i >= len(d) || d[p.i] != ':' {
			p.syntax(&syntaxError{"expected ':' after key", p.i})
			return
		}
		p.i = skipWS(d, p.i+1)
		if p.i >= len(d) {
			p.eof()
			return
		}
		fn(k)
		if p.abort {
			return
		}
		p.path = p.path[:len(p.path)-1]
		p.i = skipWS(d, p.i)
		if p.i >= len(d) {
			p.eof()
			return
		}
		switch d[p.i] {
		case ',':
			p.i = skipWS(d, p.i+1)
		case '}':
			p.i++
			p.objKeys = p.objKeys[:base]
			return
		default:
			p.syntax(&syntaxError{"expected ',' or '}' after an object member", p.i})
			return
		}
	}
}

// elems walks the array at p.d[p.i] == '[' at nesting depth depth, calling fn for
// each element with p.i at its start; fn must consume the element.
func (p *parser) elems(depth int, fn func(i int)) {
	if depth > p.lim.MaxDepth {
		p.fatal(CodeTooDeep, "Objects and arrays are nested more than "+strconv.Itoa(p.lim.MaxDepth)+" levels deep.")
		return
	}
	d := p.d
	p.i = skipWS(d, p.i+1)
	if p.i < len(d) && d[p.i] == ']' {
		p.i++
		return
	}
	for n := 0; ; n++ {
		if p.i >= len(d) {
			p.eof()
			return
		}
		p.path = append(p.path, seg{idx: n, arr: true})
		fn(n)
		if p.abort {
			return
		}
		p.path = p.path[:len(p.path)-1]
		p.i = skipWS(d, p.i)
		if p.i >= len(d) {
			p.eof()
			return
		}
		switch d[p.i] {
		case ',':
			p.i = skipWS(d, p.i+1)
		case ']':
			p.i++
			return
		default:
			p.syntax(&syntaxError{"expected ',' or ']' after an array element", p.i})
			return
		}
	}
}

// value consumes any JSON value at p.i (not whitespace) whose nesting depth, if it
// is an object or array, is depth. names: object keys inside must be camelCase.
func (p *parser) value(depth int, names bool) {
	d := p.d
	switch c := d[p.i]; c {
	case '{':
		mode := modeCount
		if names {
			mode = modeAttr
		}
		p.members(depth, mode, func(key) { p.value(depth+1, names) })
	case '[':
		p.elems(depth, func(int) { p.value(depth+1, names) })
	case '"':
		p.str()
	case 't', 'f', 'n':
		end, err := scanLiteral(d, p.i)
		if err != nil {
			p.syntax(err)
			return
		}
		p.i = end
	default:
		if c != '-' && (c < '0' || c > '9') {
			p.syntax(&syntaxError{"invalid character " + strconv.QuoteRuneToASCII(rune(c)) + " looking for a value", p.i})
			return
		}
		end, err := scanNumber(d, p.i)
		if err != nil {
			p.syntax(err)
			return
		}
		p.i = end
	}
}

// str consumes the string at p.i, checks its length and returns it as a key.
func (p *parser) str() (key, bool) {
	end, esc, err := scanString(p.d, p.i)
	if err != nil {
		p.syntax(err)
		return key{}, false
	}
	k := key{q: p.d[p.i:end], esc: esc}
	p.i = end
	p.checkLen(k.q, esc, "string")
	return k, true
}

func (p *parser) checkLen(q []byte, esc bool, what string) {
	n := len(q) - 2
	if n <= p.lim.MaxStringLength {
		return
	}
	if esc { // decoding never lengthens a string
		if n = len(unquote(q)); n <= p.lim.MaxStringLength {
			return
		}
	}
	p.fail(CodeStringTooLong, "The "+what+" is "+strconv.Itoa(n)+" bytes long; the limit is "+strconv.Itoa(p.lim.MaxStringLength)+".")
}

// profile consumes the top-level profile object.
func (p *parser) profile() {
	var seenIM, seenSM bool
	p.members(1, modeCount, func(k key) {
		switch {
		case k.is("identityMap"):
			seenIM = true
			p.identityMap()
		case k.is("segmentMembership"):
			seenSM = true
			p.segmentMembership()
		default:
			if !k.camel() {
				p.fail(CodeInvalidAttributeName, "Attribute name "+strconv.Quote(k.String())+" is not camelCase; names must match ^[a-z][a-zA-Z0-9]*$.")
			}
			p.value(2, true)
		}
	})
	if p.abort {
		return
	}
	if !seenIM {
		p.fail(CodeMissingIdentityMap, "The profile has no identityMap; it needs at least one supported identity (a plaintext Email, an ECID or a custom namespace ID).")
	}
	if !seenSM {
		p.fail(CodeMissingSegmentMembership, "The profile has no segmentMembership; it needs segmentMembership.ups with at least one audience.")
	}
}
