package destination

import (
	"fmt"
	"strings"
	"testing"

	"github.com/qgate/qgate/internal/fault"
	"github.com/qgate/qgate/internal/qualtrics"
)

var testPolicy = qualtrics.HostPolicy{AllowedHosts: []string{"*.qualtrics.com"}}

func ptr[T any](v T) *T { return &v }

// validRequest is a create request that passes every rule.
func validRequest() Request {
	return Request{
		Name:              ptr("EU survey"),
		Description:       ptr("NPS after purchase"),
		URL:               ptr("https://sjc1.qualtrics.com/inbound-event/v1/events/json/triggers?urlTokenId=abc"),
		Username:          ptr("api-user"),
		APIToken:          ptr("tok-0123456789"),
		IdentityMappings:  &[]IdentityMapping{{Source: "Email", Target: "email"}, {Source: "ECID", Target: "external_id"}},
		AttributeMappings: &[]AttributeMapping{{Source: "person.name.firstName", Target: "firstName"}},
		Audiences:         &[]string{"seg-1", "seg-2"},
	}
}

func TestValidateAcceptsValid(t *testing.T) {
	r := validRequest()
	if p := r.Validate(testPolicy, nil); len(p) != 0 {
		t.Fatalf("problems: %+v", p)
	}
	d := r.Apply(Defaults())
	if !d.Enabled || d.RateLimitPerMinute != 3000 || d.Paused {
		t.Fatalf("defaults not applied: %+v", d)
	}
	// Optional parts may be absent; a custom namespace maps to external_id alone.
	r = validRequest()
	r.Description, r.AttributeMappings = nil, nil
	r.IdentityMappings = &[]IdentityMapping{{Source: "crmId", Target: "external_id"}}
	r.RateLimitPerMinute = ptr(1)
	if p := r.Validate(testPolicy, nil); len(p) != 0 {
		t.Fatalf("problems: %+v", p)
	}
}

func TestValidateRules(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	cases := []struct {
		name   string
		mutate func(r *Request)
		want   []string // "path code"
	}{
		{"name missing", func(r *Request) { r.Name = nil }, []string{"name required"}},
		{"name empty", func(r *Request) { r.Name = ptr("") }, []string{"name required"}},
		{"name blank", func(r *Request) { r.Name = ptr("   ") }, []string{"name required"}},
		{"name too long", func(r *Request) { r.Name = ptr(long(201)) }, []string{"name too_large"}},
		{"name 200 ok", func(r *Request) { r.Name = ptr(long(200)) }, nil},
		{"name control char", func(r *Request) { r.Name = ptr("a\nb") }, []string{"name invalid_characters"}},
		{"description too long", func(r *Request) { r.Description = ptr(long(2001)) }, []string{"description too_large"}},
		{"url missing", func(r *Request) { r.URL = nil }, []string{"url required"}},
		{"url http", func(r *Request) { r.URL = ptr("http://sjc1.qualtrics.com/x") }, []string{"url url_not_allowed"}},
		{"url other host", func(r *Request) { r.URL = ptr("https://example.com/x") }, []string{"url url_not_allowed"}},
		{"url loopback", func(r *Request) { r.URL = ptr("https://127.0.0.1/x") }, []string{"url url_not_allowed"}},
		{"url metadata", func(r *Request) { r.URL = ptr("https://169.254.169.254/") }, []string{"url url_not_allowed"}},
		{"url userinfo", func(r *Request) { r.URL = ptr("https://u:p@x.qualtrics.com/") }, []string{"url url_not_allowed"}},
		{"url garbage", func(r *Request) { r.URL = ptr("not a url") }, []string{"url url_not_allowed"}},
		{"username missing", func(r *Request) { r.Username = nil }, []string{"username required"}},
		{"username colon", func(r *Request) { r.Username = ptr("a:b") }, []string{"username invalid_username"}},
		{"token missing", func(r *Request) { r.APIToken = nil }, []string{"apiToken required"}},
		{"token empty", func(r *Request) { r.APIToken = ptr("") }, []string{"apiToken required"}},
		{"token short", func(r *Request) { r.APIToken = ptr("1234567") }, []string{"apiToken too_small"}},
		{"token 8 ok", func(r *Request) { r.APIToken = ptr("12345678") }, nil},
		{"token newline", func(r *Request) { r.APIToken = ptr("12345678\n") }, []string{"apiToken invalid_token"}},
		{"identity none", func(r *Request) { r.IdentityMappings = &[]IdentityMapping{} }, []string{"identityMappings required"}},
		{"identity absent", func(r *Request) { r.IdentityMappings = nil }, []string{"identityMappings required"}},
		{"identity source empty", func(r *Request) {
			r.IdentityMappings = &[]IdentityMapping{{Source: "", Target: "external_id"}}
		}, []string{"identityMappings[0].source required"}},
		{"identity target empty", func(r *Request) {
			r.IdentityMappings = &[]IdentityMapping{{Source: "ECID", Target: ""}}
		}, []string{"identityMappings[0].target required"}},
		{"identity source too long", func(r *Request) {
			r.IdentityMappings = &[]IdentityMapping{{Source: long(101), Target: "external_id"}}
		}, []string{"identityMappings[0].source too_large"}},
		{"identity source bad chars", func(r *Request) {
			r.IdentityMappings = &[]IdentityMapping{{Source: "my ns", Target: "external_id"}}
		}, []string{"identityMappings[0].source invalid_namespace"}},
		{"identity hashed namespace", func(r *Request) {
			r.IdentityMappings = &[]IdentityMapping{{Source: "Email_LC_SHA256", Target: "external_id"}}
		}, []string{"identityMappings[0].source hashed_namespace"}},
		{"identity phone namespace", func(r *Request) {
			r.IdentityMappings = &[]IdentityMapping{{Source: "Phone", Target: "external_id"}}
		}, []string{"identityMappings[0].source unsupported_namespace"}},
		{"identity unknown target", func(r *Request) {
			r.IdentityMappings = &[]IdentityMapping{{Source: "ECID", Target: "phone"}}
		}, []string{"identityMappings[0].target unsupported_target"}},
		{"email from ECID", func(r *Request) {
			r.IdentityMappings = &[]IdentityMapping{{Source: "ECID", Target: "email"}}
		}, []string{"identityMappings[0].target email_source_mismatch"}},
		{"Email to external_id", func(r *Request) {
			r.IdentityMappings = &[]IdentityMapping{{Source: "Email", Target: "external_id"}}
		}, []string{"identityMappings[0].target email_source_mismatch"}},
		{"duplicate identity target", func(r *Request) {
			r.IdentityMappings = &[]IdentityMapping{{Source: "ECID", Target: "external_id"}, {Source: "crmId", Target: "external_id"}}
		}, []string{"identityMappings[1].target duplicate_target"}},
		{"attribute source empty", func(r *Request) {
			r.AttributeMappings = &[]AttributeMapping{{Source: "", Target: "x"}}
		}, []string{"attributeMappings[0].source required"}},
		{"attribute source not camelCase", func(r *Request) {
			r.AttributeMappings = &[]AttributeMapping{{Source: "person.Name.first_name", Target: "x"}}
		}, []string{"attributeMappings[0].source invalid_source"}},
		{"attribute source empty segment", func(r *Request) {
			r.AttributeMappings = &[]AttributeMapping{{Source: "person..name", Target: "x"}}
		}, []string{"attributeMappings[0].source invalid_source"}},
		{"attribute source segmentMembership", func(r *Request) {
			r.AttributeMappings = &[]AttributeMapping{{Source: "segmentMembership.ups", Target: "segs"}}
		}, []string{"attributeMappings[0].source reserved_source"}},
		{"attribute target empty", func(r *Request) {
			r.AttributeMappings = &[]AttributeMapping{{Source: "a", Target: ""}}
		}, []string{"attributeMappings[0].target required"}},
		{"attribute target not camelCase", func(r *Request) {
			r.AttributeMappings = &[]AttributeMapping{{Source: "a", Target: "First_name"}}
		}, []string{"attributeMappings[0].target invalid_target"}},
		{"attribute target reserved", func(r *Request) {
			r.AttributeMappings = &[]AttributeMapping{{Source: "a", Target: "identityMap"}, {Source: "b", Target: "segmentMembership"}}
		}, []string{"attributeMappings[0].target reserved_target", "attributeMappings[1].target reserved_target"}},
		{"attribute target duplicate", func(r *Request) {
			r.AttributeMappings = &[]AttributeMapping{{Source: "a", Target: "x"}, {Source: "b", Target: "x"}}
		}, []string{"attributeMappings[1].target duplicate_target"}},
		{"attribute too many", func(r *Request) {
			ms := make([]AttributeMapping, MaxAttributeCount+1)
			for i := range ms {
				ms[i] = AttributeMapping{Source: "a", Target: fmt.Sprintf("t%d", i)}
			}
			r.AttributeMappings = &ms
		}, []string{"attributeMappings too_large"}},
		{"audiences absent", func(r *Request) { r.Audiences = nil }, []string{"audiences required"}},
		{"audiences empty", func(r *Request) { r.Audiences = &[]string{} }, []string{"audiences required"}},
		{"audience empty string", func(r *Request) { r.Audiences = &[]string{"a", ""} }, []string{"audiences[1] required"}},
		{"audience blank", func(r *Request) { r.Audiences = &[]string{" "} }, []string{"audiences[0] invalid_audience"}},
		{"audience too long", func(r *Request) { r.Audiences = &[]string{long(201)} }, []string{"audiences[0] too_large"}},
		{"audience duplicate", func(r *Request) { r.Audiences = &[]string{"a", "b", "a"} }, []string{"audiences[2] duplicate_audience"}},
		{"audience empty and duplicate together", func(r *Request) { r.Audiences = &[]string{"", "b", "b"} },
			[]string{"audiences[0] required", "audiences[2] duplicate_audience"}},
		{"rate limit zero", func(r *Request) { r.RateLimitPerMinute = ptr(0) }, []string{"rateLimitPerMinute too_small"}},
		{"rate limit over", func(r *Request) { r.RateLimitPerMinute = ptr(3001) }, []string{"rateLimitPerMinute too_large"}},
		{"everything wrong at once", func(r *Request) { *r = Request{} }, []string{
			"name required", "url required", "username required", "identityMappings required",
			"audiences required", "apiToken required"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := validRequest()
			tc.mutate(&r)
			got := r.Validate(testPolicy, nil)
			var gotS []string
			for _, p := range got {
				if p.Message == "" {
					t.Errorf("problem %s %s has no message", p.Path, p.Code)
				}
				gotS = append(gotS, p.Path+" "+p.Code)
			}
			if strings.Join(gotS, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("problems\n got %q\nwant %q\n%+v", gotS, tc.want, got)
			}
		})
	}
}

func TestValidatePatch(t *testing.T) {
	vr := validRequest()
	cur := vr.Apply(Defaults())
	// An empty patch is valid and needs no token.
	if p := (&Request{}).Validate(testPolicy, &cur); len(p) != 0 {
		t.Fatalf("empty patch: %+v", p)
	}
	// A patch is judged on the destination it results in.
	r := Request{Audiences: &[]string{}, APIToken: ptr("short")}
	got := r.Validate(testPolicy, &cur)
	want := []fault.Problem{{Path: "audiences", Code: "required"}, {Path: "apiToken", Code: "too_small"}}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i].Path != want[i].Path || got[i].Code != want[i].Code {
			t.Fatalf("got %+v want %+v", got, want)
		}
	}
	// Apply leaves absent fields alone and copies lists.
	next := (&Request{Enabled: ptr(false)}).Apply(cur)
	if next.Enabled || next.Name != cur.Name || len(next.Audiences) != 2 {
		t.Fatalf("apply: %+v", next)
	}
}

func TestValidateURLReasonNamesTheProblem(t *testing.T) {
	r := validRequest()
	r.URL = ptr("https://evil.example.com/")
	p := r.Validate(testPolicy, nil)
	if len(p) != 1 || !strings.Contains(p[0].Message, "allow-list") || strings.HasPrefix(p[0].Message, qualtrics.ErrURLNotAllowed.Error()) {
		t.Fatalf("%+v", p)
	}
	// With private networks allowed (tests, demos), loopback http passes; metadata never does.
	open := qualtrics.HostPolicy{AllowPrivate: true}
	r.URL = ptr("http://127.0.0.1:8081/events")
	if p := r.Validate(open, nil); len(p) != 0 {
		t.Fatalf("%+v", p)
	}
	r.URL = ptr("https://169.254.169.254/")
	if p := r.Validate(open, nil); len(p) != 1 || p[0].Code != "url_not_allowed" {
		t.Fatalf("%+v", p)
	}
}

func FuzzValidate(f *testing.F) {
	f.Add("n", "https://a.qualtrics.com/x", "Email", "email", "person.name", "firstName", "seg")
	f.Fuzz(func(t *testing.T, name, url, src, tgt, asrc, atgt, aud string) {
		r := Request{Name: &name, URL: &url, Username: ptr("u"), APIToken: ptr("12345678"),
			IdentityMappings:  &[]IdentityMapping{{Source: src, Target: tgt}},
			AttributeMappings: &[]AttributeMapping{{Source: asrc, Target: atgt}},
			Audiences:         &[]string{aud}}
		for _, p := range r.Validate(testPolicy, nil) {
			if p.Path == "" || p.Code == "" || p.Message == "" {
				t.Fatalf("incomplete problem %+v", p)
			}
		}
	})
}
