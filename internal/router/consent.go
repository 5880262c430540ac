package router

import (
	"encoding/json"

	gojson "github.com/goccy/go-json"

	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/profile"
)

// consents is the profile's "consents" object (AEP's Consents and Preferences field group),
// decoded once per profile however many destinations ask.
type consents struct {
	raw    json.RawMessage
	doc    map[string]any
	loaded bool
}

// granted reports whether the profile grants every consent policy requires: for each entry
// "a.b", consents.a.b.val is a granting value (destination.Granted). A profile without a
// consents object, or whose value is missing or not a string, does not grant.
func (c *consents) granted(policy destination.ConsentPolicy) bool {
	if len(policy.Require) == 0 {
		return true
	}
	if !c.loaded {
		c.loaded = true
		var top struct {
			Consents map[string]any `json:"consents"`
		}
		// go-json: ~3x faster than encoding/json here, the same maps (bench/jsoncodec,
		// BenchmarkConsents).
		if gojson.Unmarshal(c.raw, &top) == nil {
			c.doc = top.Consents
		}
	}
	for _, path := range policy.Require {
		v, ok := lookup(c.doc, path+".val")
		s, isString := v.(string)
		if !ok || !isString || !destination.Granted(s) {
			return false
		}
	}
	return true
}

func newConsents(p *profile.Profile) *consents { return &consents{raw: p.Raw} }
