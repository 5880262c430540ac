package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/jsonscan"
	"github.com/qgate/qgate/internal/profile"
)

// Shaped is the outcome of shaping one profile for one destination: a payload, or the reason
// it is excluded.
type Shaped struct {
	Payload        json.RawMessage
	Excluded       string // delivery.ReasonMissingIdentity or delivery.ReasonPayloadTooLarge
	EmailHash      string // hash of the first email sent, for support look-ups
	ExternalIDHash string // hash of the first external ID sent
}

// Shape builds the JSON event for destination d from a validated profile (docs/payload.md):
//
//   - identityMap: "Email": [{"id": ...}] for the email mapping (as in Adobe's export), and
//     "external_id": [{"id": ..., "namespace": "ECID"}] for each external_id mapping, in the
//     order of the mappings;
//   - segmentMembership.ups: only the destination's activated audiences, each entry exactly as
//     received (status, lastQualificationTime);
//   - the attributes: with attribute mappings, each mapped value under its target name (a
//     source path missing from the profile is left out); without, the whole open schema.
//
// A profile with none of the mapped identities is excluded (missing_identity); a payload over
// 100 KB is excluded (payload_too_large).
//
// The payload is json.Marshal of the profile decoded into maps, as shapeJSON does it: keys
// sorted, values re-encoded. With encoding/json, Shape was ~5-6% of qgate's CPU (decoding
// the whole profile into maps, then json.Marshal sorting and re-encoding them through
// reflection), so Shape writes the same bytes by hand (shaper, below); a profile the shaper
// does not fully understand (not one valid JSON object, duplicate keys, nesting deeper than
// jsonscan.MaxDepth) goes through shapeJSON. FuzzShape checks the two against each other.
//
// Qualtrics needs valid JSON with these members, not encoding/json's bytes. The shaper stays
// because no codec comes near it (bench/jsoncodec: ~2-4 µs and 3-6 allocations a payload;
// decoding into maps and marshalling them with goccy/go-json, segmentio/encoding or sonic
// 11-23 µs and 78-138 allocations, encoding/json 21-34 µs), and it keeps encoding/json's bytes
// because that costs it little (sorting a few members) and makes shapeJSON an exact oracle.
func Shape(d *destination.Destination, p *profile.Profile) (Shaped, error) {
	sh := shapers.Get().(*shaper)
	s, ok := sh.shape(d, p)
	sh.release()
	if ok {
		return s, nil
	}
	return shapeJSON(d, p)
}

// shapeJSON is Shape with encoding/json: the definition of Shape's output, and its fallback.
func shapeJSON(d *destination.Destination, p *profile.Profile) (Shaped, error) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(p.Raw))
	dec.UseNumber() // numbers pass through exactly as received
	if err := dec.Decode(&doc); err != nil {
		return Shaped{}, fmt.Errorf("shape: profile: %w", err)
	}
	var s Shaped
	var buf [2][4]int
	emails, exts := s.identities(d, p.Identities, buf[0][:0], buf[1][:0])
	if len(emails) == 0 && len(exts) == 0 {
		s.Excluded = delivery.ReasonMissingIdentity
		s.carried(p.Identities)
		return s, nil
	}
	ids := map[string]any{}
	for _, k := range emails {
		ids["Email"] = append(asList(ids["Email"]), map[string]any{"id": p.Identities[k].ID})
	}
	for _, k := range exts {
		id := p.Identities[k]
		ids["external_id"] = append(asList(ids["external_id"]), map[string]any{"id": id.ID, "namespace": id.Namespace})
	}

	out := map[string]any{}
	if len(d.AttributeMappings) == 0 {
		for k, v := range doc {
			if k != "identityMap" && k != "segmentMembership" {
				out[k] = v
			}
		}
	} else {
		for _, m := range d.AttributeMappings {
			if v, ok := lookup(doc, m.Source); ok {
				out[m.Target] = v
			}
		}
	}
	out["identityMap"] = ids

	ups := map[string]any{}
	if sm, ok := doc["segmentMembership"].(map[string]any); ok {
		if all, ok := sm["ups"].(map[string]any); ok {
			for _, aud := range d.Audiences {
				if v, ok := all[aud]; ok {
					ups[aud] = v
				}
			}
		}
	}
	out["segmentMembership"] = map[string]any{"ups": ups}

	b, err := json.Marshal(out)
	if err != nil {
		return Shaped{}, fmt.Errorf("shape: encode: %w", err)
	}
	if len(b) > delivery.MaxPayloadBytes {
		s.Excluded = delivery.ReasonPayloadTooLarge
		return s, nil
	}
	s.Payload = b
	return s, nil
}

// identities appends to emails and exts the indices in ids of the identities d sends as Email
// and as external_id, in the order of d's identity mappings, and sets s's hashes of the first
// of each.
func (s *Shaped) identities(d *destination.Destination, ids []profile.Identity, emails, exts []int) ([]int, []int) {
	for _, m := range d.IdentityMappings {
		for i, id := range ids {
			if !strings.EqualFold(id.Namespace, m.Source) {
				continue
			}
			switch m.Target {
			case destination.TargetEmail:
				emails = append(emails, i)
			case destination.TargetExternalID:
				exts = append(exts, i)
			}
		}
	}
	if len(emails) > 0 {
		s.EmailHash = delivery.HashIdentity(ids[emails[0]].ID)
	}
	if len(exts) > 0 {
		s.ExternalIDHash = delivery.HashIdentity(ids[exts[0]].ID)
	}
	return emails, exts
}

// carried sets s's hashes, for an update excluded for a missing identity, from the identities
// the profile did carry (none of which the destination maps): the first email-namespace one as
// the email hash, the first other one as the external ID hash. Support can then find the
// exclusion by the identity it knows the customer by.
func (s *Shaped) carried(ids []profile.Identity) {
	for _, id := range ids {
		switch {
		case strings.EqualFold(id.Namespace, "Email"):
			if s.EmailHash == "" {
				s.EmailHash = delivery.HashIdentity(id.ID)
			}
		case s.ExternalIDHash == "":
			s.ExternalIDHash = delivery.HashIdentity(id.ID)
		}
	}
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

// lookup follows a dotted path of object keys.
func lookup(doc map[string]any, path string) (any, bool) {
	var cur any = doc
	for _, seg := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// Touches reports the destination's audiences that appear in the profile's memberships.
func Touches(d *destination.Destination, p *profile.Profile) bool {
	for _, m := range p.Memberships {
		if d.HasAudience(m.AudienceID) {
			return true
		}
	}
	return false
}

// shaper writes Shape's payload without encoding/json: it parses the profile once into a flat
// list of its values (node), then writes what json.Marshal writes for the maps shapeJSON
// builds: objects with their members sorted by key, strings re-encoded as encoding/json
// encodes them (HTML-safe), numbers (json.Number in shapeJSON) and literals as received, no
// whitespace. Shapers are pooled; their slices are scratch space reused from one call to the
// next.
type shaper struct {
	raw    []byte
	nodes  []node
	keys   []byte   // unescaped keys of members whose key is not its raw bytes
	order  []int    // members of the objects being written, sorted by key
	names  []byte   // names of the payload's members (top)
	top    []member // the payload's members
	auds   []audience
	emails []int  // the Email identities to send, as indices in p.Identities
	exts   []int  // the external_id identities to send, likewise
	str    []byte // a string's value, to be re-encoded
	out    []byte
}

// node is one JSON value of the profile. The values are in document order, each followed by
// its descendants, so an object's or array's children are the nodes from its index + 1 up to
// its next, each child's next leading to its following sibling.
type node struct {
	lo, hi  int  // the value's bytes in raw
	next    int  // index of the node after this one and its descendants
	kind    byte // '{', '[', '"', or 0 for a number, true, false or null: written as received
	plain   bool // a string whose raw bytes are what encoding/json writes for its value
	nodeKey      // an object member's key
}

// nodeKey is an object member's key, unescaped: keys[klo:khi] if kesc, else raw[klo:khi].
type nodeKey struct {
	klo, khi int
	kplain   bool // the key's raw bytes, raw[klo-1:khi+1], are what encoding/json writes for it
	kesc     bool
}

// member is one member of the payload object: its name is names[lo:hi], its value the node
// of that index, or the identity map or segment memberships the shaper builds.
type member struct{ lo, hi, node int }

const (
	identityMapNode       = -1
	segmentMembershipNode = -2
)

type audience struct {
	id   string
	node int
}

var shapers = sync.Pool{New: func() any { return new(shaper) }}

// release returns sh to the pool, unless it has grown unusually large.
func (sh *shaper) release() {
	if cap(sh.out) > 4*delivery.MaxPayloadBytes || cap(sh.nodes) > 1<<16 {
		return
	}
	sh.raw = nil
	shapers.Put(sh)
}

// shape is Shape, or false when shapeJSON must decide (sh does not handle the profile).
func (sh *shaper) shape(d *destination.Destination, p *profile.Profile) (Shaped, bool) {
	if !sh.parse(p.Raw) {
		return Shaped{}, false
	}
	var s Shaped
	sh.emails, sh.exts = s.identities(d, p.Identities, sh.emails[:0], sh.exts[:0])
	if len(sh.emails) == 0 && len(sh.exts) == 0 {
		s.Excluded = delivery.ReasonMissingIdentity
		s.carried(p.Identities)
		return s, true
	}

	// The payload's members.
	sh.top, sh.names = sh.top[:0], sh.names[:0]
	if len(d.AttributeMappings) == 0 {
		for c := 1; c < sh.nodes[0].next; c = sh.nodes[c].next {
			if k := sh.key(c); string(k) != "identityMap" && string(k) != "segmentMembership" {
				sh.addMember(k, c)
			}
		}
	} else {
		for _, m := range d.AttributeMappings {
			v, ok := sh.lookup(m.Source)
			if !ok {
				return Shaped{}, false
			}
			if v >= 0 {
				sh.setMember(m.Target, v)
			}
		}
		sh.top = slices.DeleteFunc(sh.top, func(e member) bool {
			n := string(sh.names[e.lo:e.hi])
			return n == "identityMap" || n == "segmentMembership"
		})
	}
	sh.addMember([]byte("identityMap"), identityMapNode)
	sh.addMember([]byte("segmentMembership"), segmentMembershipNode)
	slices.SortFunc(sh.top, func(a, b member) int { return bytes.Compare(sh.names[a.lo:a.hi], sh.names[b.lo:b.hi]) })
	for i := 1; i < len(sh.top); i++ {
		if bytes.Equal(sh.names[sh.top[i-1].lo:sh.top[i-1].hi], sh.names[sh.top[i].lo:sh.top[i].hi]) {
			return Shaped{}, false // a duplicate key in the profile
		}
	}

	sh.out = append(sh.out[:0], '{')
	for i, e := range sh.top {
		if i > 0 {
			sh.out = append(sh.out, ',')
		}
		sh.out = jsonscan.AppendString(sh.out, sh.names[e.lo:e.hi])
		sh.out = append(sh.out, ':')
		switch e.node {
		case identityMapNode:
			sh.appendIdentityMap(p.Identities)
		case segmentMembershipNode:
			if !sh.appendSegmentMembership(d.Audiences) {
				return Shaped{}, false
			}
		default:
			if !sh.appendValue(e.node) {
				return Shaped{}, false
			}
		}
	}
	sh.out = append(sh.out, '}')
	if len(sh.out) > delivery.MaxPayloadBytes {
		s.Excluded = delivery.ReasonPayloadTooLarge
		return s, true
	}
	s.Payload = bytes.Clone(sh.out)
	return s, true
}

func (sh *shaper) addMember(name []byte, n int) {
	lo := len(sh.names)
	sh.names = append(sh.names, name...)
	sh.top = append(sh.top, member{lo, len(sh.names), n})
}

// setMember sets the value of the member name, as assigning to a map does.
func (sh *shaper) setMember(name string, n int) {
	for i, e := range sh.top {
		if string(sh.names[e.lo:e.hi]) == name {
			sh.top[i].node = n
			return
		}
	}
	lo := len(sh.names)
	sh.names = append(sh.names, name...)
	sh.top = append(sh.top, member{lo, len(sh.names), n})
}

// key returns the (unescaped) key of member node n.
func (sh *shaper) key(n int) []byte {
	nd := &sh.nodes[n]
	if nd.kesc {
		return sh.keys[nd.klo:nd.khi]
	}
	return sh.raw[nd.klo:nd.khi]
}

// child returns the member of object node obj with the given key, or -1; false if the object
// has that key more than once.
func (sh *shaper) child(obj int, key string) (int, bool) {
	found := -1
	for c := obj + 1; c < sh.nodes[obj].next; c = sh.nodes[c].next {
		if string(sh.key(c)) == key {
			if found >= 0 {
				return -1, false
			}
			found = c
		}
	}
	return found, true
}

// lookup follows a dotted path of object keys from the profile object, as lookup does in the
// decoded profile: the node found, or -1; false if a key on the path is duplicated.
func (sh *shaper) lookup(path string) (int, bool) {
	cur := 0
	for {
		seg, rest, more := strings.Cut(path, ".")
		if sh.nodes[cur].kind != '{' {
			return -1, true
		}
		c, ok := sh.child(cur, seg)
		if c < 0 || !ok {
			return -1, ok
		}
		if !more {
			return c, true
		}
		cur, path = c, rest
	}
}

func (sh *shaper) appendIdentityMap(ids []profile.Identity) {
	sh.out = append(sh.out, '{')
	sh.appendIdentities(`"Email":[`, sh.emails, ids, false)
	if len(sh.emails) > 0 && len(sh.exts) > 0 {
		sh.out = append(sh.out, ',')
	}
	sh.appendIdentities(`"external_id":[`, sh.exts, ids, true)
	sh.out = append(sh.out, '}')
}

// appendIdentities writes the member that begins with open, a list of the identities ids[k]
// for each k in list, with their namespaces if namespace is set; nothing if list is empty.
func (sh *shaper) appendIdentities(open string, list []int, ids []profile.Identity, namespace bool) {
	if len(list) == 0 {
		return
	}
	sh.out = append(sh.out, open...)
	for i, k := range list {
		if i > 0 {
			sh.out = append(sh.out, ',')
		}
		sh.out = append(sh.out, `{"id":`...)
		sh.out = jsonscan.AppendString(sh.out, ids[k].ID)
		if namespace {
			sh.out = append(sh.out, `,"namespace":`...)
			sh.out = jsonscan.AppendString(sh.out, ids[k].Namespace)
		}
		sh.out = append(sh.out, '}')
	}
	sh.out = append(sh.out, ']')
}

// appendSegmentMembership writes {"ups":{...}} with the destination's audiences found in the
// profile's segmentMembership.ups; false if a key it reads is duplicated.
func (sh *shaper) appendSegmentMembership(audiences []string) bool {
	sh.auds = sh.auds[:0]
	sm, ok := sh.child(0, "segmentMembership")
	if !ok {
		return false
	}
	if sm >= 0 && sh.nodes[sm].kind == '{' {
		ups, ok := sh.child(sm, "ups")
		if !ok {
			return false
		}
		if ups >= 0 && sh.nodes[ups].kind == '{' {
			members, ok := sh.sortedMembers(ups)
			if !ok {
				return false
			}
			for _, a := range audiences {
				i, found := slices.BinarySearchFunc(members, a, func(c int, a string) int {
					switch k := sh.key(c); {
					case string(k) < a:
						return -1
					case string(k) > a:
						return 1
					}
					return 0
				})
				if found {
					sh.auds = append(sh.auds, audience{a, members[i]})
				}
			}
			sh.order = sh.order[:len(sh.order)-len(members)]
		}
	}
	slices.SortFunc(sh.auds, func(a, b audience) int { return strings.Compare(a.id, b.id) })
	sh.out = append(sh.out, `{"ups":{`...)
	for i, a := range sh.auds {
		if i > 0 {
			if a.id == sh.auds[i-1].id {
				continue // the destination lists it twice
			}
			sh.out = append(sh.out, ',')
		}
		sh.out = jsonscan.AppendString(sh.out, a.id)
		sh.out = append(sh.out, ':')
		if !sh.appendValue(a.node) {
			return false
		}
	}
	sh.out = append(sh.out, "}}"...)
	return true
}

// sortedMembers appends the members of object node obj to sh.order, sorted by key, and
// returns them; the caller truncates sh.order afterwards. False if a key is duplicated.
func (sh *shaper) sortedMembers(obj int) ([]int, bool) {
	base := len(sh.order)
	for c := obj + 1; c < sh.nodes[obj].next; c = sh.nodes[c].next {
		sh.order = append(sh.order, c)
	}
	members := sh.order[base:]
	slices.SortFunc(members, func(a, b int) int { return bytes.Compare(sh.key(a), sh.key(b)) })
	for i := 1; i < len(members); i++ {
		if bytes.Equal(sh.key(members[i-1]), sh.key(members[i])) {
			sh.order = sh.order[:base]
			return nil, false
		}
	}
	return members, true
}

// appendValue writes node n as json.Marshal writes its decoded value; false if an object in
// it has a duplicated key.
func (sh *shaper) appendValue(n int) bool {
	nd := &sh.nodes[n]
	switch nd.kind {
	case '"':
		if nd.plain {
			sh.out = append(sh.out, sh.raw[nd.lo:nd.hi]...)
		} else {
			sh.str = jsonscan.Unquote(sh.str[:0], sh.raw[nd.lo+1:nd.hi-1])
			sh.out = jsonscan.AppendString(sh.out, sh.str)
		}
	case '[':
		sh.out = append(sh.out, '[')
		for c := n + 1; c < nd.next; c = sh.nodes[c].next {
			if c > n+1 {
				sh.out = append(sh.out, ',')
			}
			if !sh.appendValue(c) {
				return false
			}
		}
		sh.out = append(sh.out, ']')
	case '{':
		members, ok := sh.sortedMembers(n)
		if !ok {
			return false
		}
		sh.out = append(sh.out, '{')
		for i, c := range members {
			if i > 0 {
				sh.out = append(sh.out, ',')
			}
			if m := &sh.nodes[c]; m.kplain {
				sh.out = append(sh.out, sh.raw[m.klo-1:m.khi+1]...)
			} else {
				sh.out = jsonscan.AppendString(sh.out, sh.key(c))
			}
			sh.out = append(sh.out, ':')
			if !sh.appendValue(c) {
				return false
			}
		}
		sh.out = append(sh.out, '}')
		sh.order = sh.order[:len(sh.order)-len(members)]
	default:
		sh.out = append(sh.out, sh.raw[nd.lo:nd.hi]...)
	}
	return true
}

// parse reads raw into sh.nodes (the profile object is node 0); false unless raw is one valid
// JSON object, with nothing but whitespace after it, nested no deeper than jsonscan.MaxDepth.
func (sh *shaper) parse(raw []byte) bool {
	sh.raw, sh.nodes, sh.keys, sh.order = raw, sh.nodes[:0], sh.keys[:0], sh.order[:0]
	i := jsonscan.SkipSpace(raw, 0)
	if i >= len(raw) || raw[i] != '{' {
		return false
	}
	if i = sh.value(i, 0); i < 0 {
		return false
	}
	return jsonscan.SkipSpace(raw, i) == len(raw)
}

// value parses the JSON value at raw[i] into nodes, returning its end, or -1 if it is not
// valid JSON (the shaper never accepts what encoding/json rejects) or nests too deep.
func (sh *shaper) value(i, depth int) int {
	b := sh.raw
	if i >= len(b) {
		return -1
	}
	n := len(sh.nodes)
	sh.nodes = append(sh.nodes, node{lo: i})
	switch c := b[i]; c {
	case '{', '[':
		if depth >= jsonscan.MaxDepth {
			return -1
		}
		sh.nodes[n].kind = c
		var more bool
		for i, more = jsonscan.Open(b, i); more; i, more = jsonscan.Next(b, i, c+2) {
			var k nodeKey
			if c == '{' {
				if i = sh.scanKey(&k, i); i < 0 {
					return -1
				}
			}
			m := len(sh.nodes)
			if i = sh.value(i, depth+1); i < 0 {
				return -1
			}
			sh.nodes[m].nodeKey = k
		}
	case '"':
		var f jsonscan.StringFlags
		i, f = jsonscan.ScanString(b, i)
		sh.nodes[n].kind, sh.nodes[n].plain = '"', f == 0
	default: // a number, true, false or null
		i = jsonscan.ScanLiteral(b, i)
	}
	if i < 0 {
		return -1
	}
	sh.nodes[n].hi, sh.nodes[n].next = i, len(sh.nodes)
	return i
}

// scanKey reads the key of the object member at raw[i] into k, and the colon after it; it
// returns the index of the member's value, or -1.
func (sh *shaper) scanKey(k *nodeKey, i int) int {
	k0 := i
	i, f := jsonscan.ScanString(sh.raw, i)
	if i < 0 {
		return -1
	}
	k.klo, k.khi, k.kplain = k0+1, i-1, f == 0
	if f&(jsonscan.Escaped|jsonscan.InvalidUTF8) != 0 { // the key is not its raw bytes
		k.klo = len(sh.keys)
		sh.keys = jsonscan.Unquote(sh.keys, sh.raw[k0+1:i-1])
		k.khi, k.kesc = len(sh.keys), true
	}
	return jsonscan.Colon(sh.raw, i)
}
