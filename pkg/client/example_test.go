package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/qgate/qgate/pkg/client"
)

// Ingest a profile and follow it to its destinations. (This example needs a running qgate, so
// it is compiled but not run.)
func Example() {
	ctx := context.Background()
	ingest, err := client.New("http://localhost:8080", os.Getenv("QGATE_INGEST_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	profile := json.RawMessage(`{
		"identityMap": {"Email": [{"id": "dave@example.com"}]},
		"segmentMembership": {"ups": {"046456e3b-18e1-48a6-9bda-d68547861283":
			{"lastQualificationTime": "2023-09-05T10:43:55Z", "status": "realized"}}}}`)
	resp, err := ingest.Ingest(ctx, profile)
	var apiErr *client.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.Ingest != nil:
		// 422 (nothing accepted) or 503 (Kafka did not acknowledge): the verdicts say why.
		for _, r := range apiErr.Ingest.Results {
			fmt.Println(r.Index, r.Status, r.Errors)
		}
		return
	case err != nil:
		log.Fatal(err)
	}

	support, err := client.New("http://localhost:8080", os.Getenv("QGATE_SUPPORT_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	for _, id := range resp.UpdateIDs() {
		view, err := support.GetUpdate(ctx, id)
		if client.IsNotFound(err) {
			continue // not routed yet: ask again shortly
		}
		if err != nil {
			log.Fatal(err)
		}
		for _, d := range view.Deliveries {
			fmt.Println(d.DestinationID, d.Status, len(d.Attempts))
		}
	}
}

// Register a destination and rotate its token only if nobody changed it meanwhile.
func ExampleClient_UpdateDestination() {
	ctx := context.Background()
	op, err := client.New("http://localhost:8080", os.Getenv("QGATE_OPERATOR_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	d, err := op.CreateDestination(ctx, client.NewDestination{
		Name:             "EU NPS",
		URL:              "https://sjc1.qualtrics.com/inbound-event/v1/events/json/triggers?urlTokenId=abc",
		Username:         "api-user",
		APIToken:         "the-workflow-token",
		IdentityMappings: []client.IdentityMapping{{Source: "Email", Target: client.TargetEmail}},
		Audiences:        []string{"046456e3b-18e1-48a6-9bda-d68547861283"},
	})
	if err != nil {
		log.Fatal(err)
	}
	_, err = op.UpdateDestination(ctx, d.ID, client.DestinationPatch{APIToken: new("the-new-token")}, d.Version)
	if client.IsConflict(err) {
		log.Print("the destination changed meanwhile; get it again and retry")
	}
}

// Errors from qgate are *APIError values; the helpers see through wrapping.
func ExampleAPIError() {
	var err error = &client.APIError{
		Status: 422, Method: "POST", Path: "/v1/destinations",
		Problems: []client.Problem{{Path: "identityMappings[0].target", Code: "unsupported_target", Message: "must be email or external_id"}},
	}
	err = fmt.Errorf("registering EU NPS: %w", err)

	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		for _, p := range apiErr.Problems {
			fmt.Printf("%s: %s\n", p.Path, p.Code)
		}
	}
	fmt.Println(client.IsInvalid(err), client.IsNotFound(err))
	fmt.Println(err)

	unavailable := &client.APIError{Status: 503, RetryAfter: 2 * time.Second, Problems: []client.Problem{{Code: "shutting_down", Message: "the node is shutting down"}}}
	fmt.Println(client.IsUnavailable(unavailable), unavailable.RetryAfter)
	// Output:
	// identityMappings[0].target: unsupported_target
	// true false
	// registering EU NPS: qgate: POST /v1/destinations: 422 Unprocessable Entity: identityMappings[0].target: unsupported_target (must be email or external_id)
	// true 2s
}
