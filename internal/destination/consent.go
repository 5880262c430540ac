package destination

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/qgate/qgate/internal/fault"
)

// ConsentPolicy names the consents a profile must have granted for the destination to receive
// it. Each entry is a dotted path under the profile's "consents" object, as AEP exports the
// Consents and Preferences field group: "collect" is consents.collect.val, "marketing.email"
// is consents.marketing.email.val. An update that has not granted every one is excluded for the
// destination with reason consent_denied (docs/payload.md). No entries: no requirement.
type ConsentPolicy struct {
	Require []string `json:"require"`
}

// Limits of a consent policy.
const (
	MaxConsentCount   = 20
	MaxConsentPathLen = 200
)

// GrantedConsentValues are the XDM consent values that grant: "y" (yes) and "dy" (yes by
// default, i.e. not opted out). Every other value ("n", "dn", "p" pending, "u" unknown, …), a
// missing value and a value that is not a string deny.
var GrantedConsentValues = []string{"y", "dy"}

// Granted reports whether an XDM consent value grants consent.
func Granted(val string) bool {
	for _, v := range GrantedConsentValues {
		if val == v {
			return true
		}
	}
	return false
}

var consentSegment = regexp.MustCompile(`^[a-z][a-zA-Z0-9]*$`)

func checkConsentPolicy(p ConsentPolicy) []fault.Problem {
	var problems []fault.Problem
	add := func(path, code, msg string) {
		problems = append(problems, fault.Problem{Path: path, Code: code, Message: msg})
	}
	if len(p.Require) > MaxConsentCount {
		add("consentPolicy.require", "too_large", fmt.Sprintf("at most %d consents", MaxConsentCount))
		return problems
	}
	seen := map[string]int{}
	for i, c := range p.Require {
		path := fmt.Sprintf("consentPolicy.require[%d]", i)
		segs := strings.Split(c, ".")
		ok := c != "" && len(c) <= MaxConsentPathLen
		for _, s := range segs {
			ok = ok && consentSegment.MatchString(s)
		}
		switch {
		case !ok:
			add(path, "invalid_consent", `must be a dotted path of camelCase names under the profile's consents, e.g. "collect" or "marketing.email"`)
		case segs[len(segs)-1] == "val":
			add(path, "invalid_consent", fmt.Sprintf("name the consent, not its value: %q (qgate reads its .val)", strings.TrimSuffix(c, ".val")))
		default:
			if j, dup := seen[c]; dup {
				add(path, "duplicate_consent", fmt.Sprintf("consent %q is already listed at consentPolicy.require[%d]", c, j))
				continue
			}
			seen[c] = i
		}
	}
	return problems
}
