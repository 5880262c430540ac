package router

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
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

// checkShape holds the hand-written shaper to shapeJSON (encoding/json) for d and p, and
// reports whether the shaper handled p itself.
func checkShape(t *testing.T, d *destination.Destination, p *profile.Profile) bool {
	t.Helper()
	want, werr := shapeJSON(d, p)
	got, gerr := Shape(d, p)
	if !reflect.DeepEqual(got, want) || errString(gerr) != errString(werr) {
		t.Fatalf("Shape(%q)\n got %+v %v\n     %s\nwant %+v %v\n     %s", p.Raw, got, gerr, got.Payload, want, werr, want.Payload)
	}
	sh := new(shaper)
	fast, ok := sh.shape(d, p)
	if ok && !reflect.DeepEqual(fast, want) {
		t.Fatalf("shaper(%q)\n got %+v\n     %s\nwant %+v\n     %s", p.Raw, fast, fast.Payload, want, want.Payload)
	}
	return ok
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// shapeDestinations are the destination shapes the equivalence tests try on each profile.
func shapeDestinations(audiences ...string) []destination.Destination {
	email := destination.IdentityMapping{Source: "Email", Target: destination.TargetEmail}
	ecid := destination.IdentityMapping{Source: "ECID", Target: destination.TargetExternalID}
	crm := destination.IdentityMapping{Source: "crm", Target: destination.TargetExternalID}
	all := append([]string{"a1", "zz", "a1"}, audiences...)
	return []destination.Destination{
		{IdentityMappings: []destination.IdentityMapping{email}, Audiences: all},
		{IdentityMappings: []destination.IdentityMapping{email, ecid, crm, email}, Audiences: nil},
		{IdentityMappings: []destination.IdentityMapping{ecid}, Audiences: all[3:]},
		{IdentityMappings: []destination.IdentityMapping{crm, ecid}, Audiences: all,
			AttributeMappings: []destination.AttributeMapping{
				{Source: "person.name.firstName", Target: "firstName"}, {Source: "person.none", Target: "gone"},
				{Source: "person", Target: "p<&>\u2028"}, {Source: "big", Target: "firstName"}, {Source: "person.name", Target: "gone"},
				{Source: "segmentMembership", Target: "identityMap"}, {Source: "identityMap", Target: "segmentMembership"},
				{Source: "", Target: ""}, {Source: "a.", Target: "dot"}, {Source: "tags", Target: "tags"}, {Source: "s", Target: "s"},
				{Source: "n", Target: "n"}, {Source: "nested.x", Target: "nested.x"}, {Source: "nested.x.y", Target: "nested.x.y"},
			}},
		{IdentityMappings: []destination.IdentityMapping{{Source: "GAID", Target: destination.TargetExternalID}}, Audiences: all},
	}
}

// shapeProfiles are raw profiles with values encoding/json decodes and re-encodes in its own
// way. Most would not pass profile.Parse; Shape must still match shapeJSON on them.
var shapeProfiles = []string{
	sample,
	`{}`,
	` {"a":1} `,
	`{"s":"<script>&amp;</script>","n":-0.5e+10,"t":true,"f":false,"z":null,"e":"","big":1E400,"neg":-0,"fr":1.250}`,
	"{\"s\":\"\u2028\u2029 \xff \xe2\x80 \xed\xa0\x80 \xef\xbf\xbd \x7f é 😀\"}",
	`{"s":"\"\\\/\b\f\n\r\t\u0000\u001f\u003c\u00e9\u2028\uD83D\uDE00\ud83d\u0041\udc00\ud800\ud800\udc00\uDBFF\uDFFF\uFFFF"}`,
	`{"s":"\ud800\\u0041","t":"\ud800","u":"\ud800x","v":"\ud800\n"}`,
	`{"k\u00e9y":1,"k\u0065y":2,"<":3,"\u2028":4,"\u0000":5,"\"":6,"\/":7,"B":8,"a":9,"":10,"é":11,"e":12}`,
	"{\"\xff\":1,\"\xfe\":2,\"\xef\xbf\xbd\":3}",
	"{\"\xff\":1,\"\xef\xbf\xbd\":3}",
	`{"tags":["b","a",{"z":1,"a":[{"y":null,"x":{}}]},[],[[]],"<"],"nested":{"x":{"y":"deep"},"x.y":1}}`,
	`{"a":{"":{"":1}},"a.":{"x":1}}`,
	`{"person":{"b":1,"a":2},"person":{"c":3}}`,
	`{"person":{"name":{"firstName":"A","firstName":"B"}}}`,
	`{"tags":{"a":1,"a":2}}`,
	`{"x":{"a":1,"a":2}}`,
	`{"segmentMembership":{"ups":{"a1":1,"a1":2}}}`,
	`{"segmentMembership":{"ups":{"a1":1}},"segmentMembership":{"ups":{"zz":2}}}`,
	`{"segmentMembership":{"ups":{"a1":1},"ups":{"zz":2}}}`,
	`{"segmentMembership":{"ups":[1]}}`,
	`{"segmentMembership":[{"ups":{"a1":1}}]}`,
	`{"segmentMembership":{"ups":{"a1":{"status":"realized"},"zz":[1,2],"b":3}},"identityMap":{"x":1},"identityMap":{"y":2}}`,
	`{"identityMap":"x","segmentMembership":null}`,
	"{\"a\" : [ 1 , 2 ] ,\n\t\"b\"\r: { } }",
	`{"a":1} trailing`,
	`{"a":1}{"b":2}`,
	`{"a":1`,
	`{"a":01}`,
	`{"a":"\x"}`,
	`{"a":[1,]}`,
	`{"a":tru}`,
	`[]`,
	`null`,
	`"x"`,
	``,
	`{"deep":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`,
	`{"deep":` + strings.Repeat("[", 10001) + strings.Repeat("]", 10001) + `}`,
}

var shapeIdentities = []profile.Identity{
	{Namespace: "CRM", ID: "c<1>&\u2028\xff\"\n"}, {Namespace: "ECID", ID: "e1"}, {Namespace: "ECID", ID: "e2"},
	{Namespace: "Email", ID: "dave@example.com"}, {Namespace: "Email", ID: "two@example.com"},
}

func TestShapeMatchesJSON(t *testing.T) {
	for _, raw := range shapeProfiles {
		p := &profile.Profile{Raw: json.RawMessage(raw), Identities: shapeIdentities}
		for _, d := range shapeDestinations() {
			checkShape(t, &d, p)
		}
	}
	// Real profiles are shaped by hand, not by encoding/json.
	files, _ := filepath.Glob("../../testdata/profiles/good/*.json")
	if len(files) == 0 {
		t.Fatal("no profile fixtures")
	}
	for _, f := range append(files, "") {
		raw := []byte(sample)
		if f != "" {
			var err error
			if raw, err = os.ReadFile(f); err != nil {
				t.Fatal(err)
			}
		}
		p := parse(t, string(raw))
		var auds []string
		for _, m := range p.Memberships {
			auds = append(auds, m.AudienceID)
		}
		for _, d := range shapeDestinations(auds...) {
			if !checkShape(t, &d, p) {
				t.Errorf("%s: left to encoding/json", f)
			}
		}
	}
}

// FuzzShape holds Shape to shapeJSON (encoding/json) for any profile bytes, identities and
// mappings.
func FuzzShape(f *testing.F) {
	for _, raw := range shapeProfiles {
		f.Add([]byte(raw), "a1,zz", "", "x<&\u2028\xff")
		f.Add([]byte(raw), "", "person.name.firstName=firstName,tags=tags,a.=x,s=s,=,x=identityMap", "")
	}
	files, _ := filepath.Glob("../../testdata/profiles/good/*.json")
	for _, name := range files {
		raw, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw, "046456e3b-18e1-48a6-9bda-d68547861283,a1", "", "")
		f.Add(raw, "046456e3b-18e1-48a6-9bda-d68547861283", "person=person,person.name=n,loyalty.points=points", "x")
	}
	f.Fuzz(func(t *testing.T, raw []byte, audiences, attrs, id string) {
		p, errs := profile.Parse(raw, profile.DefaultLimits())
		if errs != nil {
			p = &profile.Profile{Raw: raw, Identities: append(shapeIdentities, profile.Identity{Namespace: "crm", ID: id})}
		}
		for _, d := range shapeDestinations() {
			d.Audiences = append(d.Audiences, strings.Split(audiences, ",")...)
			if attrs != "" {
				d.AttributeMappings = nil
				for m := range strings.SplitSeq(attrs, ",") {
					src, target, _ := strings.Cut(m, "=")
					d.AttributeMappings = append(d.AttributeMappings, destination.AttributeMapping{Source: src, Target: target})
				}
			}
			checkShape(t, &d, p)
		}
	})
}

// benchProfile is the sample profile of BRIEF §3 with a few more audiences, as the router
// sees it.
const benchProfile = `{"person": {"name": {"firstName": "Dave", "lastName": "O'Brien"}},
 "mobilePhone": {"number": "0123456789"},
 "identityMap": {"Email": [{"id": "dave@example.com"}], "ECID": [{"id": "45870000000000000000000000000000000001"}]},
 "segmentMembership": {"ups": {"046456e3b-18e1-48a6-9bda-d68547861283":
     {"lastQualificationTime": "2023-09-05T10:43:55.602687Z", "status": "realized"},
     "7a1b2c3d-18e1-48a6-9bda-d68547861284": {"lastQualificationTime": "2023-09-06T08:00:00Z", "status": "existing"},
     "8b2c3d4e-18e1-48a6-9bda-d68547861285": {"lastQualificationTime": "2023-09-07T08:00:00Z", "status": "exited"}}},
 "loyalty": {"tier": "gold", "points": 12345, "memberSince": "2019-04-01"},
 "preferences": {"language": "en-GB", "channels": ["email", "sms"], "marketingOptIn": true},
 "homeAddress": {"city": "London", "postalCode": "SW1A 1AA", "country": "GB"}}`

func BenchmarkShape(b *testing.B) {
	p, errs := profile.Parse([]byte(benchProfile), profile.DefaultLimits())
	if errs != nil {
		b.Fatal(errs)
	}
	ids := []destination.IdentityMapping{{Source: "Email", Target: destination.TargetEmail}, {Source: "ECID", Target: destination.TargetExternalID}}
	auds := []string{"046456e3b-18e1-48a6-9bda-d68547861283", "8b2c3d4e-18e1-48a6-9bda-d68547861285"}
	dests := map[string]*destination.Destination{
		"passthrough": {IdentityMappings: ids, Audiences: auds},
		"mapped": {IdentityMappings: ids, Audiences: auds, AttributeMappings: []destination.AttributeMapping{
			{Source: "person.name.firstName", Target: "firstName"}, {Source: "loyalty.tier", Target: "tier"}, {Source: "preferences", Target: "preferences"}}},
	}
	for _, dname := range []string{"passthrough", "mapped"} {
		d := dests[dname]
		for _, bc := range []struct {
			name  string
			shape func(*destination.Destination, *profile.Profile) (Shaped, error)
		}{{"json", shapeJSON}, {"hand", Shape}} {
			b.Run(dname+"/"+bc.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if s, err := bc.shape(d, p); err != nil || s.Payload == nil {
						b.Fatal(err, s.Excluded)
					}
				}
			})
		}
	}
}
