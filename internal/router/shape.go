package router

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
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
func Shape(d *destination.Destination, p *profile.Profile) (Shaped, error) {
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(p.Raw))
	dec.UseNumber() // numbers pass through exactly as received
	if err := dec.Decode(&doc); err != nil {
		return Shaped{}, fmt.Errorf("shape: profile: %w", err)
	}
	var s Shaped
	ids := map[string]any{}
	for _, m := range d.IdentityMappings {
		for _, id := range p.Identities {
			if !strings.EqualFold(id.Namespace, m.Source) {
				continue
			}
			switch m.Target {
			case destination.TargetEmail:
				ids["Email"] = append(asList(ids["Email"]), map[string]any{"id": id.ID})
				if s.EmailHash == "" {
					s.EmailHash = delivery.HashIdentity(id.ID)
				}
			case destination.TargetExternalID:
				ids["external_id"] = append(asList(ids["external_id"]), map[string]any{"id": id.ID, "namespace": id.Namespace})
				if s.ExternalIDHash == "" {
					s.ExternalIDHash = delivery.HashIdentity(id.ID)
				}
			}
		}
	}
	if len(ids) == 0 {
		s.Excluded = delivery.ReasonMissingIdentity
		return s, nil
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
