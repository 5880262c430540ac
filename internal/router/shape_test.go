package router

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/profile"
)

const sample = `{"person":{"name":{"firstName":"Dave"}},"big":12345678901234567890,
 "identityMap":{"email":[{"id":"Dave@Example.com"}],"ECID":[{"id":"e1"}],"CRM":[{"id":"c1"}]},
 "segmentMembership":{"ups":{"a1":{"lastQualificationTime":"2023-09-05T10:43:55.602687Z","status":"realized"},
                             "a2":{"lastQualificationTime":"2023-09-06T10:43:55Z","status":"exited"}}}}`

func parse(t *testing.T, raw string) *profile.Profile {
	t.Helper()
	p, errs := profile.Parse([]byte(raw), profile.DefaultLimits())
	if errs != nil {
		t.Fatalf("parse: %+v", errs)
	}
	return p
}

func TestShape(t *testing.T) {
	email := destination.IdentityMapping{Source: "Email", Target: destination.TargetEmail}
	ecid := destination.IdentityMapping{Source: "ECID", Target: destination.TargetExternalID}
	crm := destination.IdentityMapping{Source: "crm", Target: destination.TargetExternalID}
	cases := []struct {
		name     string
		d        destination.Destination
		want     string
		excluded string
	}{
		{"passthrough keeps numbers exactly and only the destination's audiences",
			destination.Destination{IdentityMappings: []destination.IdentityMapping{email}, Audiences: []string{"a2"}},
			`{"big":12345678901234567890,"identityMap":{"Email":[{"id":"dave@example.com"}]},"person":{"name":{"firstName":"Dave"}},"segmentMembership":{"ups":{"a2":{"lastQualificationTime":"2023-09-06T10:43:55Z","status":"exited"}}}}`, ""},
		{"external ids in mapping order, attribute mapping",
			destination.Destination{IdentityMappings: []destination.IdentityMapping{crm, ecid}, Audiences: []string{"a1", "zz"},
				AttributeMappings: []destination.AttributeMapping{{Source: "person.name.firstName", Target: "firstName"}, {Source: "person.none", Target: "gone"}}},
			`{"firstName":"Dave","identityMap":{"external_id":[{"id":"c1","namespace":"CRM"},{"id":"e1","namespace":"ECID"}]},"segmentMembership":{"ups":{"a1":{"lastQualificationTime":"2023-09-05T10:43:55.602687Z","status":"realized"}}}}`, ""},
		{"no mapped identity is excluded",
			destination.Destination{IdentityMappings: []destination.IdentityMapping{{Source: "GAID", Target: destination.TargetExternalID}}, Audiences: []string{"a1"}},
			"", delivery.ReasonMissingIdentity},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Shape(&tc.d, parse(t, sample))
			if err != nil {
				t.Fatal(err)
			}
			if s.Excluded != tc.excluded || string(s.Payload) != tc.want {
				t.Fatalf("got excluded=%q payload=%s\nwant excluded=%q payload=%s", s.Excluded, s.Payload, tc.excluded, tc.want)
			}
		})
	}
}

func TestShapeExcludesPayloadsOverQualtricsLimit(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"notes":{`)
	for i := range 30 {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"f` + strings.Repeat("x", i+1) + `":"` + strings.Repeat("y", 3500) + `"`)
	}
	b.WriteString(`},"identityMap":{"Email":[{"id":"a@example.com"}]},"segmentMembership":{"ups":{"a1":{"lastQualificationTime":"2023-09-05T10:43:55Z","status":"realized"}}}}`)
	d := destination.Destination{IdentityMappings: []destination.IdentityMapping{{Source: "Email", Target: destination.TargetEmail}}, Audiences: []string{"a1"}}
	s, err := Shape(&d, parse(t, b.String()))
	if err != nil || s.Excluded != delivery.ReasonPayloadTooLarge || s.Payload != nil {
		t.Fatalf("got %v %q %d bytes", err, s.Excluded, len(s.Payload))
	}
	if !json.Valid([]byte(b.String())) {
		t.Fatal("fixture invalid")
	}
}

func TestTouches(t *testing.T) {
	p := parse(t, sample)
	if !Touches(&destination.Destination{Audiences: []string{"x", "a2"}}, p) || Touches(&destination.Destination{Audiences: []string{"x"}}, p) {
		t.Fatal("Touches")
	}
}
