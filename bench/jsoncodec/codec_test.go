// Package jsoncodec measures qgate's JSON paths on the delivery hot path (the update envelope,
// router.Shape, the delivery job, the router's consent read) against encoding/json and
// maintained codecs (issue #12). "qgate" is what qgate runs today: router.Shape, update's and
// delivery's codecs (goccy/go-json since h-codec, hand-written before). It is its own module,
// like bench/peer, so that the codecs it compares are never in qgate's go.mod; it imports qgate
// through a replace directive. See docs/benchmarks.md, "JSON codecs".
package jsoncodec

import (
	"bytes"
	stdjson "encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/bytedance/sonic"
	gojson "github.com/goccy/go-json"
	segjson "github.com/segmentio/encoding/json"

	"github.com/qgate/qgate/bench"
	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/profile"
	"github.com/qgate/qgate/internal/router"
	"github.com/qgate/qgate/internal/update"
)

// codec is one JSON library as the paths use it.
type codec struct {
	name      string
	marshal   func(any) ([]byte, error)
	unmarshal func([]byte, any) error
	// decodeNumber is unmarshal with numbers kept as json.Number (as received).
	decodeNumber func([]byte, any) error
}

var sonicNumber = sonic.Config{EscapeHTML: true, SortMapKeys: true, CompactMarshaler: true, CopyString: true,
	ValidateString: true, UseNumber: true}.Froze()

// sonicFastNumber is sonic's fastest settings (no sorting, no HTML escaping) with numbers as
// received: what a shaper that does not hold itself to encoding/json's bytes could use.
var sonicFastNumber = sonic.Config{NoQuoteTextMarshaler: true, NoValidateJSONMarshaler: true, UseNumber: true}.Froze()

var codecs = []codec{
	{"std", stdjson.Marshal, stdjson.Unmarshal, func(b []byte, v any) error {
		d := stdjson.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		return d.Decode(v)
	}},
	{"goccy", gojson.Marshal, gojson.Unmarshal, func(b []byte, v any) error {
		d := gojson.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		return d.Decode(v)
	}},
	{"segmentio", segjson.Marshal, segjson.Unmarshal, func(b []byte, v any) error {
		_, err := segjson.Parse(b, v, segjson.UseNumber)
		return err
	}},
	{"sonic-std", sonic.ConfigStd.Marshal, sonic.ConfigStd.Unmarshal, sonicNumber.Unmarshal},
	{"sonic-fast", sonic.ConfigFastest.Marshal, sonic.ConfigFastest.Unmarshal, sonicFastNumber.Unmarshal},
}

// Inputs: the load generator's profiles (bench.AppendProfile / AppendRoutedProfile).

func routedProfile(tb testing.TB) *profile.Profile {
	p, errs := profile.Parse(bench.AppendRoutedProfile(nil, 42, 0), profile.DefaultLimits())
	if errs != nil {
		tb.Fatal(errs)
	}
	return p
}

func richProfile(tb testing.TB) *profile.Profile {
	p, errs := profile.Parse(bench.AppendProfile(nil, 12345), profile.DefaultLimits())
	if errs != nil {
		tb.Fatal(errs)
	}
	return p
}

var (
	email = destination.IdentityMapping{Source: "Email", Target: destination.TargetEmail}
	ecid  = destination.IdentityMapping{Source: "ECID", Target: destination.TargetExternalID}
)

// shapeCases are the destinations of the benchmarks: the delivery benchmark's (qbench
// deliver, bench/hotpath_test.go), and two on a profile with both audiences.
func shapeCases(tb testing.TB) []struct {
	name string
	d    *destination.Destination
	p    *profile.Profile
} {
	auds := []string{"046456e3b-18e1-48a6-9bda-d68547861283", "7a1b2c3d-18e1-48a6-9bda-d68547861284"}
	return []struct {
		name string
		d    *destination.Destination
		p    *profile.Profile
	}{
		{"routed", &destination.Destination{IdentityMappings: []destination.IdentityMapping{email}, Audiences: []string{bench.Audience(0)}}, routedProfile(tb)},
		{"passthrough", &destination.Destination{IdentityMappings: []destination.IdentityMapping{email, ecid}, Audiences: auds}, richProfile(tb)},
		{"mapped", &destination.Destination{IdentityMappings: []destination.IdentityMapping{email, ecid}, Audiences: auds,
			AttributeMappings: []destination.AttributeMapping{{Source: "person.name.firstName", Target: "firstName"},
				{Source: "loyalty.tier", Target: "tier"}, {Source: "preferences", Target: "preferences"}}}, richProfile(tb)},
	}
}

// shapeMaps is router.Shape written on a codec as router's shapeJSON is on encoding/json: the
// profile decoded into maps (numbers as received), the payload built from them and marshalled.
func shapeMaps(c codec, d *destination.Destination, p *profile.Profile) ([]byte, error) {
	var doc map[string]any
	if err := c.decodeNumber(p.Raw, &doc); err != nil {
		return nil, err
	}
	ids := map[string]any{}
	for _, m := range d.IdentityMappings {
		for _, id := range p.Identities {
			if !strings.EqualFold(id.Namespace, m.Source) {
				continue
			}
			switch m.Target {
			case destination.TargetEmail:
				l, _ := ids["Email"].([]any)
				ids["Email"] = append(l, map[string]any{"id": id.ID})
			case destination.TargetExternalID:
				l, _ := ids["external_id"].([]any)
				ids["external_id"] = append(l, map[string]any{"id": id.ID, "namespace": id.Namespace})
			}
		}
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
			var cur any = doc
			ok := true
			for _, seg := range strings.Split(m.Source, ".") {
				mm, isMap := cur.(map[string]any)
				if !isMap {
					ok = false
					break
				}
				if cur, ok = mm[seg]; !ok {
					break
				}
			}
			if ok {
				out[m.Target] = cur
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
	return c.marshal(out)
}

// sameJSON fails unless a and b are the same JSON value (member order aside).
func sameJSON(tb testing.TB, what string, a, b []byte) {
	tb.Helper()
	var va, vb any
	if err := stdjson.Unmarshal(a, &va); err != nil {
		tb.Fatalf("%s: %v: %s", what, err, a)
	}
	if err := stdjson.Unmarshal(b, &vb); err != nil {
		tb.Fatalf("%s: %v: %s", what, err, b)
	}
	ca, _ := stdjson.Marshal(va)
	cb, _ := stdjson.Marshal(vb)
	if !bytes.Equal(ca, cb) {
		tb.Fatalf("%s: different values\n%s\n%s", what, a, b)
	}
}

// TestCodecsAgree checks that what the benchmarks compare is the same work: every codec's
// shape, job and envelope is the same JSON value as qgate's.
func TestCodecsAgree(t *testing.T) {
	for _, sc := range shapeCases(t) {
		want, err := router.Shape(sc.d, sc.p)
		if err != nil || want.Payload == nil {
			t.Fatal(err, want.Excluded)
		}
		for _, c := range codecs {
			got, err := shapeMaps(c, sc.d, sc.p)
			if err != nil {
				t.Fatal(c.name, err)
			}
			sameJSON(t, sc.name+"/"+c.name, got, want.Payload)
		}
	}
	j := sampleJob(t)
	want, err := delivery.EncodeJob(j)
	if err != nil {
		t.Fatal(err)
	}
	env := sampleEnvelope()
	for _, c := range codecs {
		b, err := c.marshal(j)
		if err != nil {
			t.Fatal(c.name, err)
		}
		sameJSON(t, "job/"+c.name, b, want)
		var dj delivery.Job
		if err := c.unmarshal(want, &dj); err != nil || dj.DeliveryID != j.DeliveryID || !dj.ReceivedAt.Equal(j.ReceivedAt) || !bytes.Equal(dj.Payload, j.Payload) {
			t.Fatalf("job/%s: %v %+v", c.name, err, dj)
		}
		var e update.Envelope
		if err := c.unmarshal(env, &e); err != nil || e.UpdateID == "" || len(e.Profile) == 0 {
			t.Fatalf("envelope/%s: %v %+v", c.name, err, e)
		}
	}
}

func BenchmarkShape(b *testing.B) {
	for _, sc := range shapeCases(b) {
		b.Run(sc.name+"/qgate", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if s, err := router.Shape(sc.d, sc.p); err != nil || s.Payload == nil {
					b.Fatal(err)
				}
			}
		})
		for _, c := range codecs {
			b.Run(sc.name+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if _, err := shapeMaps(c, sc.d, sc.p); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func sampleJob(tb testing.TB) delivery.Job {
	sc := shapeCases(tb)[0]
	s, err := router.Shape(sc.d, sc.p)
	if err != nil {
		tb.Fatal(err)
	}
	upd := "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	return delivery.Job{V: delivery.JobVersion, DeliveryID: delivery.ID(upd, "dst_0193a1b2c3d4"), UpdateID: upd,
		DestinationID: "dst_0193a1b2c3d4", ProfileKey: "3f2a9c0d1e4b5a6978877665544332211",
		ReceivedAt: time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC), Generation: 3, Payload: s.Payload}
}

func BenchmarkEncodeJob(b *testing.B) {
	j := sampleJob(b)
	b.Run("qgate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := delivery.EncodeJob(j); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range codecs {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.marshal(j); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeJob(b *testing.B) {
	in, err := delivery.EncodeJob(sampleJob(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("qgate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := delivery.DecodeJob(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range codecs {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var j delivery.Job
				if err := c.unmarshal(in, &j); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func sampleEnvelope() []byte {
	return update.AppendEncode(nil, envelope())
}

func envelope() update.Envelope {
	return update.Envelope{V: update.Version, UpdateID: "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
		ReceivedAt: time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC), ProfileKey: "3f2a9c0d1e4b5a6978877665544332211",
		Profile: bench.AppendProfile(nil, 12345)}
}

func BenchmarkEncodeEnvelope(b *testing.B) {
	e := envelope()
	b.Run("qgate", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			buf = update.AppendEncode(buf[:0], e)
		}
	})
	for _, c := range codecs {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.marshal(e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecodeEnvelope(b *testing.B) {
	in := sampleEnvelope()
	b.Run("qgate", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := update.Decode(in); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, c := range codecs {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var e update.Envelope
				if err := c.unmarshal(in, &e); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// consentProfile is the load generator's profile with AEP's Consents and Preferences field
// group (docs/payload.md), as the router reads it for a destination with a consent policy.
func consentProfile() []byte {
	p := bench.AppendProfile(nil, 12345)
	return append(p[:len(p)-1], `,"consents":{"collect":{"val":"y"},"marketing":{"preferred":"email","any":{"val":"y"},"email":{"val":"n"}},"metadata":{"time":"2026-11-01T10:00:00Z"}}}`...)
}

// BenchmarkConsents is router/consent.go's decode (once per profile, when a destination has a
// consent policy): the profile's top-level "consents" into maps, the rest skipped.
func BenchmarkConsents(b *testing.B) {
	in := consentProfile()
	for _, c := range codecs {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				var top struct {
					Consents map[string]any `json:"consents"`
				}
				if err := c.unmarshal(in, &top); err != nil || top.Consents == nil {
					b.Fatal(err)
				}
			}
		})
	}
}
