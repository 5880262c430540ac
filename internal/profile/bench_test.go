package profile

import (
	"strings"
	"testing"
)

// sampleProfile is the sample of BRIEF §3 (about 600 bytes with its formatting).
const sampleProfile = `{"person": {"name": {"firstName": "Dave"}},
 "mobilePhone": {"number": "0123456789"},
 "identityMap": {"Email": [{"id": "dave@example.com"}], "ECID": [{"id": "45870000000000000000000000000000000001"}]},
 "segmentMembership": {"ups": {"046456e3b-18e1-48a6-9bda-d68547861283":
     {"lastQualificationTime": "2023-09-05T10:43:55.602687Z", "status": "realized"},
     "7a1b2c3d-18e1-48a6-9bda-d68547861284":
     {"lastQualificationTime": "2023-09-06T08:00:00Z", "status": "existing"}}},
 "loyalty": {"tier": "gold", "points": 12345, "memberSince": "2019-04-01"},
 "preferences": {"language": "en-GB", "channels": ["email", "sms"], "marketingOptIn": true},
 "homeAddress": {"city": "London", "postalCode": "SW1A 1AA", "country": "GB"}}`

func BenchmarkParse(b *testing.B) {
	raw := []byte(sampleProfile)
	lim := DefaultLimits()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		p, errs := Parse(raw, lim)
		if errs != nil {
			b.Fatal(errs)
		}
		_ = p.Key()
	}
}

func BenchmarkSplitBody100(b *testing.B) {
	body := []byte(`{"profiles": [` + strings.TrimSuffix(strings.Repeat(sampleProfile+",", 100), ",") + `]}`)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		parts, err := SplitBody(body, 500)
		if err != nil || len(parts) != 100 {
			b.Fatal(err, len(parts))
		}
	}
}

// BenchmarkSplitParse100 is the ingest path for a batch of 100: split, then parse each.
func BenchmarkSplitParse100(b *testing.B) {
	body := []byte(`{"profiles": [` + strings.TrimSuffix(strings.Repeat(sampleProfile+",", 100), ",") + `]}`)
	lim := DefaultLimits()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		parts, err := SplitBody(body, 500)
		if err != nil {
			b.Fatal(err)
		}
		for _, raw := range parts {
			p, errs := Parse(raw, lim)
			if errs != nil {
				b.Fatal(errs)
			}
			_ = p.Key()
		}
	}
}
