package router

import (
	"testing"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
)

// An update excluded because the destination maps none of its identities still records the
// hashes of those it carried, so support finds the exclusion by the customer's email or ID.
func TestExclusionRecordsCarriedIdentities(t *testing.T) {
	p := parse(t, `{"identityMap": {"ECID": [{"id": "4587ECID"}], "Email": [{"id": "Ann@Example.com"}]},
 "segmentMembership": {"ups": {"a1": {"status": "realized", "lastQualificationTime": "2023-09-05T10:43:55Z"}}}}`)
	d := destination.Destination{IdentityMappings: []destination.IdentityMapping{{Source: "GAID", Target: destination.TargetExternalID}}, Audiences: []string{"a1"}}
	for name, shape := range map[string]func() (Shaped, error){
		"Shape":     func() (Shaped, error) { return Shape(&d, p) },
		"shapeJSON": func() (Shaped, error) { return shapeJSON(&d, p) },
	} {
		s, err := shape()
		if err != nil {
			t.Fatal(err)
		}
		if s.Excluded != delivery.ReasonMissingIdentity || s.Payload != nil {
			t.Fatalf("%s: excluded=%q payload=%s, want missing_identity and no payload", name, s.Excluded, s.Payload)
		}
		if s.EmailHash != delivery.HashIdentity("ann@example.com") || s.ExternalIDHash != delivery.HashIdentity("4587ECID") {
			t.Fatalf("%s: hashes %q %q, want those of the carried email and ECID", name, s.EmailHash, s.ExternalIDHash)
		}
	}
	// The fast path and the encoding/json path still agree.
	checkShape(t, &d, p)
}
