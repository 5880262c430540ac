package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
)

// DestinationSummary is a destination as support sees it (GET /v1/support/destinations): its
// name and whether it sends, nothing of its URL, username or token.
type DestinationSummary struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Enabled   bool     `json:"enabled"`
	Paused    bool     `json:"paused"`
	Audiences []string `json:"audiences"`
}

// SupportDestinations iterates over every live destination with a support key (operator keys
// use [Client.AllDestinations]). A qgate that predates the endpoint answers 404 with code
// route_not_found. It stops at the first error, which it yields.
func (c *Client) SupportDestinations(ctx context.Context) iter.Seq2[DestinationSummary, error] {
	return pages(func(cursor string) ([]DestinationSummary, string, error) {
		q := url.Values{}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var out struct {
			Destinations []DestinationSummary `json:"destinations"`
			NextCursor   *string              `json:"nextCursor"`
		}
		if _, err := c.call(ctx, http.MethodGet, "/v1/support/destinations", q, nil, &out); err != nil {
			return nil, "", err
		}
		return out.Destinations, deref(out.NextCursor), nil
	})
}
