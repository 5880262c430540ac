package profile

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// FuzzProfile feeds arbitrary bytes to SplitBody and Parse. Neither may panic; an
// accepted profile has valid JSON bytes and a key. The seed corpus is every fixture
// under testdata/profiles, so plain `go test` runs them.
func FuzzProfile(f *testing.F) {
	good, bad := loadFixtures(f)
	for _, fx := range append(good, bad...) {
		f.Add(fx.data)
	}
	f.Add([]byte(`{"profiles": [{"identityMap": {"ECID": [{"id": "1"}]}}, 1, "x"]}`))
	f.Add([]byte(`{"a": "\ud800\udc00 \u00e9", "identityMap": {"email": [{"id": "A@B.CO"}]}}`))
	for _, s := range []string{`{"profiles": [{}, 2 ]} `, `{"profiles": [{}, ]}`, `{"profiles": [{}]} x`, `{"profiles": [{}], "a": 1}`,
		`{"profiles": [{}]`, `{"profiles" [{}]}`, `{ "profil\u0065s" : [ {} , [] ] }`, `{"profiles": [{}] }}`} {
		f.Add([]byte(s))
	}
	lim := Limits{MaxDepth: 6, MaxStringLength: 64, MaxAttributes: 40, MaxIdentities: 4, MaxAudiences: 4}
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func(raw []byte, lim Limits) {
			p, errs := Parse(raw, lim)
			if p == nil {
				if len(errs) == 0 || len(errs) > MaxErrors {
					t.Fatalf("rejected with %d errors", len(errs))
				}
				if errs[0].Code == CodeInvalidJSON && json.Valid(raw) && utf8.Valid(raw) {
					t.Fatalf("invalid_json for valid JSON: %v", errs)
				}
				for _, e := range errs {
					if e.Code == "" || e.Message == "" {
						t.Fatalf("incomplete error %+v", e)
					}
				}
				return
			}
			if errs != nil {
				t.Fatalf("accepted with errors %v", errs)
			}
			if !json.Valid(p.Raw) {
				t.Fatalf("Raw is not valid JSON: %q", p.Raw)
			}
			if p.Key() == "" {
				t.Fatal("empty Key")
			}
			if len(p.Identities) == 0 || len(p.Memberships) == 0 {
				t.Fatal("accepted without identities or memberships")
			}
		}
		check(data, DefaultLimits())
		check(data, lim)
		// The one-pass batch path agrees with the general path whenever it answers.
		if fast, ok := splitBatch(data, 10); ok {
			general, err := splitGeneral(data, 10)
			if err != nil || len(general) != len(fast) {
				t.Fatalf("splitBatch: %d parts; general path: %d parts, %v", len(fast), len(general), err)
			}
			for i := range fast {
				if string(fast[i]) != string(general[i]) {
					t.Fatalf("part %d: splitBatch %q, general path %q", i, fast[i], general[i])
				}
			}
		}
		parts, err := SplitBody(data, 10)
		if err == nil {
			if len(parts) == 0 || len(parts) > 10 {
				t.Fatalf("SplitBody returned %d parts", len(parts))
			}
			for _, part := range parts {
				if !json.Valid(part) {
					t.Fatalf("SplitBody part is not valid JSON: %q", part)
				}
				check(part, DefaultLimits())
			}
		} else if json.Valid(data) && data[0] == '{' && len(parts) != 0 {
			t.Fatal("parts returned with an error")
		}
	})
}
