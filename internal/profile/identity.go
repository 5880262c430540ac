package profile

import (
	"strconv"
	"strings"
)

type nsKind uint8

const (
	nsCustom nsKind = iota
	nsEmail
	nsECID
	nsHashed      // hashed by nature (Email_LC_SHA256, Phone_SHA256, …): ignored
	nsUnsupported // a standard namespace that cannot map to external_id: ignored
)

// unsupportedNamespaces are Adobe standard identity namespaces (case-insensitive) that
// are neither Email nor ECID: only ECID and custom namespaces map to external_id.
var unsupportedNamespaces = []string{
	"Phone", "Phone_E.164", // phone numbers are PII, not external IDs
	"AdCloud", "AAID", "TNTID", "IDFA", "GAID", "GCLID", "WAID", // device and advertising IDs
}

func classifyNamespace(ns string) nsKind {
	switch {
	case strings.EqualFold(ns, NamespaceEmail):
		return nsEmail
	case strings.EqualFold(ns, NamespaceECID):
		return nsECID
	case isHashedNamespace(ns):
		return nsHashed
	}
	for _, u := range unsupportedNamespaces {
		if strings.EqualFold(ns, u) {
			return nsUnsupported
		}
	}
	return nsCustom
}

// isHashedNamespace reports whether an underscore-separated part of ns is SHA<digits>
// or MD5 (case-insensitive), as in Email_LC_SHA256 or Phone_SHA256_E.164.
func isHashedNamespace(ns string) bool {
	for part := range strings.SplitSeq(ns, "_") {
		if strings.EqualFold(part, "MD5") {
			return true
		}
		if len(part) > 3 && strings.EqualFold(part[:3], "SHA") {
			digits := true
			for i := 3; i < len(part); i++ {
				if part[i] < '0' || part[i] > '9' {
					digits = false
					break
				}
			}
			if digits {
				return true
			}
		}
	}
	return false
}

// hashName returns the hash algorithm whose hex digest s looks like, or "".
func hashName(s string) string {
	var name string
	switch len(s) {
	case 32:
		name = "an MD5"
	case 40:
		name = "a SHA-1"
	case 64:
		name = "a SHA-256"
	case 128:
		name = "a SHA-512"
	default:
		return ""
	}
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return ""
		}
	}
	return name
}

// validEmail accepts an ASCII addr-spec with an unquoted local part and a DNS domain
// of at least two labels: the intersection of RFC 5321 and what Qualtrics accepts.
func validEmail(s string) bool {
	if len(s) > 254 {
		return false
	}
	at := strings.IndexByte(s, '@')
	if at <= 0 || at > 64 || strings.IndexByte(s[at+1:], '@') >= 0 {
		return false
	}
	local, domain := s[:at], s[at+1:]
	if local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, "..") {
		return false
	}
	for i := 0; i < len(local); i++ {
		c := local[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte(".!#$%&'*+-/=?^_`{|}~", c) >= 0) {
			return false
		}
	}
	if len(domain) > 253 {
		return false
	}
	labels := 0
	for label := range strings.SplitSeq(domain, ".") {
		labels++
		if len(label) < 1 || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return labels >= 2
}

// identityMap consumes the identityMap value (depth 2).
func (p *parser) identityMap() {
	if p.d[p.i] != '{' {
		p.fail(CodeInvalidIdentityMap, "identityMap must be an object of namespace to an array of identities.")
		p.value(2, false)
		return
	}
	errsBefore := len(p.errs)
	p.members(2, modeCount, func(nsKey key) {
		ns := nsKey.String()
		kind := classifyNamespace(ns)
		if ns == "" {
			p.fail(CodeInvalidIdentityMap, "The identity namespace name is empty.")
		}
		switch kind {
		case nsEmail:
			ns = NamespaceEmail
		case nsECID:
			ns = NamespaceECID
		}
		if p.d[p.i] != '[' {
			p.fail(CodeInvalidIdentityMap, "Identity namespace "+strconv.Quote(ns)+" must hold an array of identities like {\"id\": \"...\"}.")
			p.value(3, false)
			return
		}
		p.elems(3, func(int) {
			p.nIdents++
			if p.nIdents == p.lim.MaxIdentities+1 {
				saved := p.path
				p.path = p.path[:1] // report at "identityMap"
				p.fail(CodeTooManyIdentities, "identityMap holds more than "+strconv.Itoa(p.lim.MaxIdentities)+" identities.")
				p.path = saved
			}
			p.identity(ns, kind)
		})
	})
	if !p.abort && len(p.errs) == errsBefore && !p.hasSupportedIdentity() {
		p.fail(CodeNoSupportedIdentity, "identityMap holds no supported identity: Qualtrics needs a plaintext Email, an ECID or an ID in a custom namespace (hashed, phone and device namespaces are ignored).")
	}
}

func (p *parser) hasSupportedIdentity() bool { return len(p.ids) > 0 }

// identity consumes one entry of an identity namespace array (depth 4).
func (p *parser) identity(ns string, kind nsKind) {
	if p.d[p.i] != '{' {
		p.fail(CodeInvalidIdentityMap, "An identity must be an object with a string \"id\".")
		p.value(4, false)
		return
	}
	var id key
	var seen, isStr bool
	p.members(4, modeCount, func(k key) {
		if !k.is("id") {
			p.value(5, false)
			return
		}
		seen = true
		if p.d[p.i] != '"' {
			isStr = false
			p.fail(CodeInvalidIdentityMap, "The identity id must be a string.")
			p.value(5, false)
			return
		}
		id, isStr = p.str()
	})
	if p.abort {
		return
	}
	if !seen {
		p.failAt(keyID, CodeEmptyIdentityID, "The identity has no id.")
		return
	}
	if !isStr {
		return
	}
	s := id.String()
	if strings.TrimSpace(s) == "" {
		p.failAt(keyID, CodeEmptyIdentityID, "The identity id is empty.")
		return
	}
	switch kind {
	case nsHashed, nsUnsupported:
		return
	case nsEmail:
		if h := hashName(s); h != "" {
			p.failAt(keyID, CodeHashedEmail, "Email identity looks like "+h+" hash; Qualtrics accepts only plaintext email addresses.")
			return
		}
		if !validEmail(s) {
			p.failAt(keyID, CodeInvalidEmail, "Email identity is not a valid email address.")
			return
		}
		s = strings.ToLower(s)
	}
	for _, o := range p.ids {
		if o.ID == s && o.Namespace == ns {
			return // duplicate identity: keep the first
		}
	}
	if p.ids == nil {
		p.ids = make([]Identity, 0, 4)
	}
	p.ids = append(p.ids, Identity{Namespace: ns, ID: s})
}
