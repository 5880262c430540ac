package profile

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

const (
	okIM  = `{"ECID": [{"id": "4587"}]}`
	okSM  = `{"ups": {"aud-1": {"status": "realized", "lastQualificationTime": "2023-09-05T10:43:55.602687Z"}}}`
	okLQT = `"lastQualificationTime": "2023-09-05T10:43:55Z"`
)

// prof builds a profile from an identityMap, a segmentMembership and extra members.
// An empty im or sm leaves that member out.
func prof(im, sm string, extra ...string) string {
	var parts []string
	if im != "" {
		parts = append(parts, `"identityMap": `+im)
	}
	if sm != "" {
		parts = append(parts, `"segmentMembership": `+sm)
	}
	parts = append(parts, extra...)
	return "{" + strings.Join(parts, ", ") + "}"
}

func ups(members string) string { return `{"ups": {` + members + `}}` }

type want struct{ path, code string }

func TestParseRules(t *testing.T) {
	nested := func(open, close string, n int) string {
		return strings.Repeat(open, n) + "1" + strings.Repeat(close, n)
	}
	many := func(n int, f func(i int) string) string {
		s := make([]string, n)
		for i := range s {
			s[i] = f(i)
		}
		return strings.Join(s, ", ")
	}
	tests := []struct {
		name string
		in   string
		lim  Limits
		want []want // nil: accepted
	}{
		{"brief sample", prof(`{"Email": [{"id": "dave@example.com"}], "ECID": [{"id": "4587..."}]}`, okSM,
			`"person": {"name": {"firstName": "Dave"}}`, `"mobilePhone": {"number": "0123456789"}`), Limits{}, nil},
		{"surrounding whitespace", " \n\t" + prof(okIM, okSM) + "\r\n ", Limits{}, nil},

		// syntax and shape
		{"empty", "", Limits{}, []want{{"", CodeInvalidJSON}}},
		{"whitespace only", "  \n", Limits{}, []want{{"", CodeInvalidJSON}}},
		{"truncated", prof(okIM, okSM)[:40], Limits{}, []want{{"", CodeInvalidJSON}}},
		{"trailing data", prof(okIM, okSM) + "{}", Limits{}, []want{{"", CodeInvalidJSON}}},
		{"trailing comma", `{"identityMap": ` + okIM + `,}`, Limits{}, []want{{"", CodeInvalidJSON}}},
		{"syntax error hides other errors", `{"Bad_name": 1, "x": tru}`, Limits{}, []want{{"", CodeInvalidJSON}}},
		{"bad escape", prof(okIM, okSM, `"a": "\x"`), Limits{}, []want{{"", CodeInvalidJSON}}},
		{"control char", prof(okIM, okSM, "\"a\": \"\x01\""), Limits{}, []want{{"", CodeInvalidJSON}}},
		{"invalid utf-8", prof(okIM, okSM, "\"a\": \"\xff\""), Limits{}, []want{{"", CodeInvalidJSON}}},
		{"leading zero", prof(okIM, okSM, `"a": 01`), Limits{}, []want{{"", CodeInvalidJSON}}},
		{"bad fraction", prof(okIM, okSM, `"a": 1.`), Limits{}, []want{{"", CodeInvalidJSON}}},
		{"not an object: array", `[{}]`, Limits{}, []want{{"", CodeNotAnObject}}},
		{"not an object: null", `null`, Limits{}, []want{{"", CodeNotAnObject}}},
		{"not an object: number", ` -1.5e+300 `, Limits{}, []want{{"", CodeNotAnObject}}},
		{"not an object: invalid", `[1,`, Limits{}, []want{{"", CodeInvalidJSON}}},
		{"duplicate top-level key", prof(okIM, okSM, `"identityMap": {"Email": [{"id": "x@example.com"}]}`), Limits{}, []want{{"identityMap", CodeDuplicateKey}}},
		{"duplicate key via escape", prof(okIM, okSM, `"a": {"b": 1, "\u0062": 2}`), Limits{}, []want{{"a.b", CodeDuplicateKey}}},
		{"duplicate key in big object", prof(okIM, okSM, `"a": {`+many(40, func(i int) string { return fmt.Sprintf(`"k%d": %d`, i, i) })+`, "k3": 0}`), Limits{}, []want{{"a.k3", CodeDuplicateKey}}},
		{"huge number is fine", prof(okIM, okSM, `"a": -123456789012345678901234567890e999999999`), Limits{}, nil},

		// identityMap
		{"missing identityMap", prof("", okSM), Limits{}, []want{{"", CodeMissingIdentityMap}}},
		{"identityMap not object", prof(`[]`, okSM), Limits{}, []want{{"identityMap", CodeInvalidIdentityMap}}},
		{"identityMap null", prof(`null`, okSM), Limits{}, []want{{"identityMap", CodeInvalidIdentityMap}}},
		{"namespace not array", prof(`{"ECID": {"id": "1"}}`, okSM), Limits{}, []want{{"identityMap.ECID", CodeInvalidIdentityMap}}},
		{"empty namespace name", prof(`{"": [{"id": "1"}], "ECID": [{"id": "1"}]}`, okSM), Limits{}, []want{{"identityMap.", CodeInvalidIdentityMap}}},
		{"entry not object", prof(`{"ECID": [{"id": "1"}, "2"]}`, okSM), Limits{}, []want{{"identityMap.ECID[1]", CodeInvalidIdentityMap}}},
		{"id not string", prof(`{"ECID": [{"id": 1}]}`, okSM), Limits{}, []want{{"identityMap.ECID[0].id", CodeInvalidIdentityMap}}},
		{"id missing", prof(`{"ECID": [{"primary": true}]}`, okSM), Limits{}, []want{{"identityMap.ECID[0].id", CodeEmptyIdentityID}}},
		{"id empty", prof(`{"ECID": [{"id": ""}]}`, okSM), Limits{}, []want{{"identityMap.ECID[0].id", CodeEmptyIdentityID}}},
		{"id blank", prof(`{"CRMID": [{"id": " \t"}], "ECID": [{"id": "1"}]}`, okSM), Limits{}, []want{{"identityMap.CRMID[0].id", CodeEmptyIdentityID}}},
		{"extra entry keys allowed", prof(`{"Email": [{"id": "a@b.co", "authenticatedState": "ambiguous", "primary": true, "Weird_Key": {"x": [1]}}]}`, okSM), Limits{}, nil},
		{"sha256 email", prof(`{"Email": [{"id": "`+strings.Repeat("ab", 32)+`"}], "ECID": [{"id": "1"}]}`, okSM), Limits{}, []want{{"identityMap.Email[0].id", CodeHashedEmail}}},
		{"md5 email upper", prof(`{"Email": [{"id": "`+strings.Repeat("AF", 16)+`"}]}`, okSM), Limits{}, []want{{"identityMap.Email[0].id", CodeHashedEmail}}},
		{"sha1 email", prof(`{"Email": [{"id": "`+strings.Repeat("a", 40)+`"}]}`, okSM), Limits{}, []want{{"identityMap.Email[0].id", CodeHashedEmail}}},
		{"sha512 email", prof(`{"Email": [{"id": "`+strings.Repeat("0", 128)+`"}]}`, okSM), Limits{}, []want{{"identityMap.Email[0].id", CodeHashedEmail}}},
		{"63 hex is just invalid", prof(`{"Email": [{"id": "`+strings.Repeat("a", 63)+`"}]}`, okSM), Limits{}, []want{{"identityMap.Email[0].id", CodeInvalidEmail}}},
		{"invalid email", prof(`{"Email": [{"id": "a@b.co"}, {"id": "not an email"}], "ECID": [{"id": "1"}]}`, okSM), Limits{}, []want{{"identityMap.Email[1].id", CodeInvalidEmail}}},
		{"email without dot", prof(`{"Email": [{"id": "a@localhost"}]}`, okSM), Limits{}, []want{{"identityMap.Email[0].id", CodeInvalidEmail}}},
		{"email double at", prof(`{"Email": [{"id": "a@b@c.com"}]}`, okSM), Limits{}, []want{{"identityMap.Email[0].id", CodeInvalidEmail}}},
		{"email dot dot", prof(`{"Email": [{"id": "a..b@c.com"}]}`, okSM), Limits{}, []want{{"identityMap.Email[0].id", CodeInvalidEmail}}},
		{"email hyphen label", prof(`{"Email": [{"id": "a@-c.com"}]}`, okSM), Limits{}, []want{{"identityMap.Email[0].id", CodeInvalidEmail}}},
		{"email spaces", prof(`{"Email": [{"id": " a@c.com"}]}`, okSM), Limits{}, []want{{"identityMap.Email[0].id", CodeInvalidEmail}}},
		{"lowercase email namespace", prof(`{"email": [{"id": "hash@example.com"}, {"id": "`+strings.Repeat("ab", 32)+`"}]}`, okSM), Limits{}, []want{{"identityMap.email[1].id", CodeHashedEmail}}},
		{"only hashed namespaces", prof(`{"Email_LC_SHA256": [{"id": "`+strings.Repeat("ab", 32)+`"}], "Phone_SHA256_E.164": [{"id": "x"}], "Foo_MD5": [{"id": "x"}]}`, okSM), Limits{}, []want{{"identityMap", CodeNoSupportedIdentity}}},
		{"only phone and device", prof(`{"Phone": [{"id": "+44"}], "phone_e.164": [{"id": "+44"}], "IDFA": [{"id": "x"}], "GAID": [{"id": "y"}]}`, okSM), Limits{}, []want{{"identityMap", CodeNoSupportedIdentity}}},
		{"empty identityMap", prof(`{}`, okSM), Limits{}, []want{{"identityMap", CodeNoSupportedIdentity}}},
		{"empty arrays", prof(`{"Email": [], "ECID": []}`, okSM), Limits{}, []want{{"identityMap", CodeNoSupportedIdentity}}},
		{"hashed-looking custom namespace is custom", prof(`{"Customer_Shard": [{"id": "1"}]}`, okSM), Limits{}, nil},
		{"too many identities", prof(`{"ECID": [`+many(30, func(i int) string { return fmt.Sprintf(`{"id": "%d"}`, i) })+`], "CRM": [`+many(21, func(i int) string { return fmt.Sprintf(`{"id": "%d"}`, i) })+`]}`, okSM), Limits{}, []want{{"identityMap", CodeTooManyIdentities}}},
		{"identities at limit", prof(`{"ECID": [`+many(3, func(i int) string { return fmt.Sprintf(`{"id": "%d"}`, i) })+`]}`, okSM), Limits{MaxIdentities: 3}, nil},
		{"identities over custom limit", prof(`{"ECID": [`+many(4, func(i int) string { return fmt.Sprintf(`{"id": "%d"}`, i) })+`]}`, okSM), Limits{MaxIdentities: 3}, []want{{"identityMap", CodeTooManyIdentities}}},

		// segmentMembership
		{"missing segmentMembership", prof(okIM, ""), Limits{}, []want{{"", CodeMissingSegmentMembership}}},
		{"missing both", `{"firstName": "x"}`, Limits{}, []want{{"", CodeMissingIdentityMap}, {"", CodeMissingSegmentMembership}}},
		{"segmentMembership not object", prof(okIM, `"realized"`), Limits{}, []want{{"segmentMembership", CodeInvalidSegmentMembership}}},
		{"no ups", prof(okIM, `{}`), Limits{}, []want{{"segmentMembership.ups", CodeMissingSegmentMembership}}},
		{"empty ups", prof(okIM, `{"ups": {}}`), Limits{}, []want{{"segmentMembership.ups", CodeMissingSegmentMembership}}},
		{"ups not object", prof(okIM, `{"ups": []}`), Limits{}, []want{{"segmentMembership.ups", CodeInvalidSegmentMembership}}},
		{"audience not object", prof(okIM, ups(`"aud-1": "realized"`)), Limits{}, []want{{"segmentMembership.ups.aud-1", CodeInvalidSegmentMembership}}},
		{"empty audience id", prof(okIM, ups(`"": {"status": "realized", `+okLQT+`}`)), Limits{}, []want{{"segmentMembership.ups.", CodeInvalidSegmentMembership}}},
		{"other namespaces", prof(okIM, `{"aam": {"1": {}}, "ups": {"a": {"status": "exited", `+okLQT+`}}, "sfmc": []}`), Limits{}, []want{{"segmentMembership.aam", CodeUnsupportedSegmentNamespace}, {"segmentMembership.sfmc", CodeUnsupportedSegmentNamespace}}},
		{"only other namespace", prof(okIM, `{"aam": {"1": {}}}`), Limits{}, []want{{"segmentMembership.aam", CodeUnsupportedSegmentNamespace}, {"segmentMembership.ups", CodeMissingSegmentMembership}}},
		{"bad status", prof(okIM, ups(`"a": {"status": "Realized", `+okLQT+`}`)), Limits{}, []want{{"segmentMembership.ups.a.status", CodeInvalidSegmentStatus}}},
		{"missing status", prof(okIM, ups(`"a": {`+okLQT+`}`)), Limits{}, []want{{"segmentMembership.ups.a.status", CodeInvalidSegmentStatus}}},
		{"status not string", prof(okIM, ups(`"a": {"status": 1, `+okLQT+`}`)), Limits{}, []want{{"segmentMembership.ups.a.status", CodeInvalidSegmentStatus}}},
		{"missing time", prof(okIM, ups(`"a": {"status": "existing"}`)), Limits{}, []want{{"segmentMembership.ups.a.lastQualificationTime", CodeInvalidQualificationTime}}},
		{"time not string", prof(okIM, ups(`"a": {"status": "existing", "lastQualificationTime": 1693910635}`)), Limits{}, []want{{"segmentMembership.ups.a.lastQualificationTime", CodeInvalidQualificationTime}}},
		{"time without zone", prof(okIM, ups(`"a": {"status": "existing", "lastQualificationTime": "2023-09-05T10:43:55"}`)), Limits{}, []want{{"segmentMembership.ups.a.lastQualificationTime", CodeInvalidQualificationTime}}},
		{"time bad day", prof(okIM, ups(`"a": {"status": "existing", "lastQualificationTime": "2023-02-30T10:43:55Z"}`)), Limits{}, []want{{"segmentMembership.ups.a.lastQualificationTime", CodeInvalidQualificationTime}}},
		{"time with offset", prof(okIM, ups(`"a": {"status": "existing", "lastQualificationTime": "2023-09-05T10:43:55.1+05:30", "version": "2"}`)), Limits{}, nil},
		{"two bad memberships", prof(okIM, ups(`"a": {"status": "x", `+okLQT+`}, "b": {"status": "exited", "lastQualificationTime": ""}`)), Limits{},
			[]want{{"segmentMembership.ups.a.status", CodeInvalidSegmentStatus}, {"segmentMembership.ups.b.lastQualificationTime", CodeInvalidQualificationTime}}},
		{"too many audiences", prof(okIM, ups(many(4, func(i int) string { return fmt.Sprintf(`"a%d": {"status": "exited", %s}`, i, okLQT) }))), Limits{MaxAudiences: 3}, []want{{"segmentMembership.ups", CodeTooManyAudiences}}},
		{"1000 audiences within default limits", prof(okIM, ups(many(1000, func(i int) string { return fmt.Sprintf(`"a%d": {"status": "exited", %s}`, i, okLQT) }))), Limits{}, nil},

		// attribute names
		{"snake case nested", prof(okIM, okSM, `"person": {"name": {"First_name": "Dave"}}`), Limits{}, []want{{"person.name.First_name", CodeInvalidAttributeName}}},
		{"upper top-level", prof(okIM, okSM, `"MobilePhone": {}`), Limits{}, []want{{"MobilePhone", CodeInvalidAttributeName}}},
		{"digit first", prof(okIM, okSM, `"1st": 1`), Limits{}, []want{{"1st", CodeInvalidAttributeName}}},
		{"empty name", prof(okIM, okSM, `"": 1`), Limits{}, []want{{"", CodeInvalidAttributeName}}},
		{"in array of objects", prof(okIM, okSM, `"orders": [{"orderId": 1}, {"order-id": 2}]`), Limits{}, []want{{"orders[1].order-id", CodeInvalidAttributeName}}},
		{"in nested arrays", prof(okIM, okSM, `"m": [[{"ok": {"Not_ok": 1}}]]`), Limits{}, []want{{"m[0][0].ok.Not_ok", CodeInvalidAttributeName}}},
		{"escaped camel name ok", prof(okIM, okSM, `"\u0061bc": 1`), Limits{}, nil},
		{"all name errors reported", prof(okIM, okSM, `"A": 1, "B": {"C": 1}`), Limits{}, []want{{"A", CodeInvalidAttributeName}, {"B", CodeInvalidAttributeName}, {"B.C", CodeInvalidAttributeName}}},

		// limits
		{"depth at limit", prof(okIM, okSM, `"d": `+nested("[", "]", 15)), Limits{}, nil},
		{"too deep arrays", prof(okIM, okSM, `"d": `+nested("[", "]", 16)), Limits{}, []want{{"d" + strings.Repeat("[0]", 15), CodeTooDeep}}},
		{"too deep objects", prof(okIM, okSM, `"d": `+strings.Repeat(`{"a": `, 16)+"1"+strings.Repeat("}", 16)), Limits{}, []want{{"d" + strings.Repeat(".a", 15), CodeTooDeep}}},
		{"adversarial depth", prof(okIM, okSM, `"d": `+nested("[", "]", 1_000_000)), Limits{}, []want{{"d" + strings.Repeat("[0]", 15), CodeTooDeep}}},
		{"custom depth", prof(okIM, okSM, `"d": {"e": 1}`), Limits{MaxDepth: 2}, []want{{"identityMap.ECID", CodeTooDeep}}},
		{"string too long", prof(okIM, okSM, `"note": "`+strings.Repeat("x", 4097)+`"`), Limits{}, []want{{"note", CodeStringTooLong}}},
		{"string at limit", prof(okIM, okSM, `"note": "`+strings.Repeat("x", 4096)+`"`), Limits{}, nil},
		{"escaped string within limit", prof(okIM, okSM, `"note": "`+strings.Repeat(`\n`, 4000)+`"`), Limits{}, nil},
		{"escaped string too long", prof(okIM, okSM, `"note": "`+strings.Repeat(`\u00e9`, 2049)+`"`), Limits{}, []want{{"note", CodeStringTooLong}}},
		{"key too long", prof(okIM, okSM, `"`+strings.Repeat("k", 4097)+`": 1`), Limits{}, []want{{strings.Repeat("k", 4097), CodeStringTooLong}}},
		{"identity id too long", prof(`{"ECID": [{"id": "`+strings.Repeat("1", 31)+`"}]}`, ups(`"a": {"status": "exited", "lastQualificationTime": "x"}`)), Limits{MaxStringLength: 30},
			[]want{{"identityMap.ECID[0].id", CodeStringTooLong}, {"segmentMembership.ups.a.lastQualificationTime", CodeInvalidQualificationTime}}},
		{"too many attributes", prof(okIM, okSM, `"a": {`+many(500, func(i int) string { return fmt.Sprintf(`"k%d": %d`, i, i) })+`}`), Limits{}, []want{{"a.k494", CodeTooManyAttributes}}},
		{"attributes at custom limit", prof(okIM, okSM, `"a": 1, "b": 2`), Limits{MaxAttributes: 7}, nil},
		{"attributes over custom limit", prof(okIM, okSM, `"a": 1, "b": 2, "c": 3`), Limits{MaxAttributes: 7}, []want{{"c", CodeTooManyAttributes}}},
		{"membership extra keys count", prof(okIM, ups(`"a": {"status": "exited", `+okLQT+`, "x": 1}`)), Limits{MaxAttributes: 5}, []want{{"segmentMembership.ups.a.x", CodeTooManyAttributes}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, errs := Parse([]byte(tc.in), tc.lim)
			var got []want
			for _, e := range errs {
				got = append(got, want{e.Path, e.Code})
				if e.Message == "" || !strings.HasSuffix(e.Message, ".") || strings.ToUpper(e.Message[:1]) != e.Message[:1] && !strings.HasPrefix(e.Message, "identityMap") && !strings.HasPrefix(e.Message, "segmentMembership") && !strings.HasPrefix(e.Message, "lastQualificationTime") {
					t.Errorf("message %q is not a sentence", e.Message)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("errors = %v, want %v\n%v", got, tc.want, errs)
			}
			if (p == nil) != (tc.want != nil) {
				t.Fatalf("profile = %v with errors %v", p, errs)
			}
			if p != nil && !json.Valid(p.Raw) {
				t.Fatalf("Raw is not valid JSON")
			}
		})
	}
}

func TestParseResult(t *testing.T) {
	in := ` {"identityMap": {"ECID": [{"id": "e1"}, {"id": "e2"}], "Email": [{"id": "B@Example.com"}, {"id": "a@example.com"}, {"id": "b@example.com"}],
	  "CRM": [{"id": "c1"}], "Email_LC_SHA256": [{"id": "` + strings.Repeat("ab", 32) + `"}], "Phone": [{"id": "+1"}]},
	  "segmentMembership": {"ups": {"z": {"status": "exited", "lastQualificationTime": "2024-01-02T03:04:05+01:00"},
	     "a": {"status": "realized", "lastQualificationTime": "2023-09-05T10:43:55.602687Z"}, "m": {"status": "existing", "lastQualificationTime": "2023-09-05T10:43:55Z"}}}} `
	p, errs := Parse([]byte(in), DefaultLimits())
	if errs != nil {
		t.Fatal(errs)
	}
	if string(p.Raw) != strings.TrimSpace(in) {
		t.Errorf("Raw = %q", p.Raw)
	}
	wantIDs := []Identity{{"CRM", "c1"}, {"ECID", "e1"}, {"ECID", "e2"}, {"Email", "b@example.com"}, {"Email", "a@example.com"}}
	if !slices.Equal(p.Identities, wantIDs) {
		t.Errorf("Identities = %v, want %v", p.Identities, wantIDs)
	}
	var gotAud []string
	for _, m := range p.Memberships {
		gotAud = append(gotAud, m.AudienceID+"/"+m.Status+"/"+m.LastQualificationTime.UTC().Format(time.RFC3339Nano))
	}
	wantAud := []string{"a/realized/2023-09-05T10:43:55.602687Z", "m/existing/2023-09-05T10:43:55Z", "z/exited/2024-01-02T02:04:05Z"}
	if !slices.Equal(gotAud, wantAud) {
		t.Errorf("Memberships = %v, want %v", gotAud, wantAud)
	}

	// Raw is a copy: the input can be reused.
	buf := []byte(prof(okIM, okSM))
	p, _ = Parse(buf, Limits{})
	before := string(p.Raw)
	clear(buf)
	if string(p.Raw) != before {
		t.Error("Raw aliases the input")
	}
}

func TestKey(t *testing.T) {
	h := func(s string) string { sum := sha256.Sum256([]byte(s)); return hex.EncodeToString(sum[:])[:32] }
	tests := []struct{ im, want string }{
		{`{"ECID": [{"id": "e1"}], "Email": [{"id": "Dave@Example.com"}, {"id": "z@example.com"}]}`, h("dave@example.com")},
		{`{"zeta": [{"id": "z"}], "ECID": [{"id": "e1"}, {"id": "e2"}], "Email_LC_SHA256": [{"id": "x"}]}`, h("ECID:e1")},
		{`{"zeta": [{"id": "z"}], "CRM": [{"id": "c2"}, {"id": "c1"}], "Phone": [{"id": "+1"}]}`, h("CRM:c2")},
	}
	for _, tc := range tests {
		p, errs := Parse([]byte(prof(tc.im, okSM)), Limits{})
		if errs != nil {
			t.Fatal(errs)
		}
		if got := p.Key(); got != tc.want {
			t.Errorf("Key(%s) = %s, want %s", tc.im, got, tc.want)
		}
		p2, _ := Parse([]byte(prof(tc.im, okSM)), Limits{})
		if p2.Key() != p.Key() {
			t.Error("Key is not stable across parses of the same profile")
		}
	}
	if k := (&Profile{}).Key(); k != "" {
		t.Errorf("Key of empty profile = %q", k)
	}
}

func TestParseErrorCap(t *testing.T) {
	var attrs []string
	for i := range 80 {
		attrs = append(attrs, fmt.Sprintf(`"Bad%d": 1`, i))
	}
	_, errs := Parse([]byte(prof(okIM, okSM, attrs...)), Limits{})
	if len(errs) != MaxErrors {
		t.Fatalf("got %d errors, want %d", len(errs), MaxErrors)
	}
}

func TestSplitBody(t *testing.T) {
	one := prof(okIM, okSM)
	tests := []struct {
		name string
		body string
		max  int
		want []string
		err  error
	}{
		{"single", "  " + one + "\n", 10, []string{one}, nil},
		{"batch", `{"profiles": [` + one + ` , 7, "x", ` + one + `]}`, 10, []string{one, "7", `"x"`, one}, nil},
		{"batch with whitespace", "\n{ \"profiles\" :\n[ " + one + " ] }\n", 1, []string{one}, nil},
		{"escaped profiles key", `{"profil\u0065s": [` + one + `]}`, 10, []string{one}, nil},
		{"profiles next to other keys is a single profile", `{"profiles": [], "identityMap": {}}`, 10, []string{`{"profiles": [], "identityMap": {}}`}, nil},
		{"empty object is a single profile", `{}`, 10, []string{`{}`}, nil},
		{"at max", `{"profiles": [{}, {}]}`, 2, []string{`{}`, `{}`}, nil},
		{"default max", `{"profiles": [{}]}`, 0, []string{`{}`}, nil},
		{"too many", `{"profiles": [{}, {}, {}]}`, 2, nil, ErrTooMany},
		{"empty", `{"profiles": []}`, 2, nil, ErrEmpty},
		{"empty with spaces", `{"profiles": [ ]}`, 2, nil, ErrEmpty},
		{"profiles not array", `{"profiles": {}}`, 2, nil, ErrMalformed},
		{"not an object", `[{}]`, 2, nil, ErrMalformed},
		{"empty body", ``, 2, nil, ErrMalformed},
		{"invalid json", `{"profiles": [{]}`, 2, nil, ErrMalformed},
		{"invalid json in element", `{"profiles": [{"a": 01}]}`, 2, nil, ErrMalformed},
		{"trailing data", `{} {}`, 2, nil, ErrMalformed},
		{"deep nesting is fine here", `{"profiles": [` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + `]}`, 2, []string{strings.Repeat("[", 100000) + strings.Repeat("]", 100000)}, nil},
		{"unclosed deep nesting", `{"profiles": [` + strings.Repeat("[", 100000) + `]}`, 2, nil, ErrMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SplitBody([]byte(tc.body), tc.max)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			var gs []string
			for _, r := range got {
				gs = append(gs, string(r))
			}
			if !slices.Equal(gs, tc.want) {
				t.Fatalf("got %q, want %q", gs, tc.want)
			}
		})
	}
}
