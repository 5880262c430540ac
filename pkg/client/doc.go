// Package client is a Go client for qgate's HTTP API (schemas/openapi.yaml; docs/api.md is the
// human guide).
//
// A [Client] holds one API key and calls the endpoints that key's role allows: [Client.Ingest]
// (role ingest), the destination methods (operator), the delivery-status methods (support;
// [Client.DestinationStats] also operator) and the key methods (admin). An admin key may call
// everything.
//
//	c, err := client.New("https://qgate.example.com", os.Getenv("QGATE_KEY"))
//	if err != nil {
//		return err
//	}
//	resp, err := c.Ingest(ctx, profileJSON)
//	if client.IsUnavailable(err) {
//		// Profiles marked "unavailable" were not queued: send them again after
//		// the error's RetryAfter.
//		return err
//	}
//	if err != nil {
//		return err // on a 422, resp still holds the per-profile verdicts
//	}
//	for _, r := range resp.Results {
//		fmt.Println(r.Index, r.Status, r.UpdateID)
//	}
//
// # Errors
//
// Every answer outside 2xx becomes an [*APIError] carrying the HTTP status, the problems of
// qgate's error body (each with a JSON path, a stable code and a message) and, on 503, the
// Retry-After delay. Use [errors.As] to read it, or the helpers [IsNotFound],
// [IsUnauthorized], [IsForbidden], [IsConflict], [IsInvalid] and [IsUnavailable]. Transport
// failures (connection refused, context cancelled, …) are returned as they are, wrapped with
// the method and path.
//
// The API key is sent only in the Authorization header. It never appears in an error, and
// printing a Client with fmt shows only its base URL.
//
// # Types
//
// The package declares its own request and response types, mirroring the JSON of the OpenAPI
// document. Responses are decoded leniently: fields a newer server adds are ignored.
// Absent optional values are zero values, except where absence means something different
// from zero (pointers, documented on each field).
package client
