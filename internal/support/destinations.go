package support

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/fault"
)

// DestinationSummary is a destination as support sees it (GET /v1/support/destinations): enough
// to find it by name and to know whether it sends, nothing of its URL, username or token.
type DestinationSummary struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Enabled   bool     `json:"enabled"`
	Paused    bool     `json:"paused"`
	Audiences []string `json:"audiences"`
}

// DestinationList is the answer to GET /v1/support/destinations: live destinations in ID order.
type DestinationList struct {
	Destinations []DestinationSummary `json:"destinations"`
	NextCursor   *string              `json:"nextCursor"`
}

// destinations lists live destinations for the support role. It is its own path rather than a
// reduced GET /v1/destinations, so that one path has one shape whatever the caller's role.
func (h *Handlers) destinations(c *gin.Context) {
	limit := MaxPageLimit
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageLimit {
			api.Fail(c, fault.New(fault.Invalid, "query.limit", "invalid_limit", "limit must be between 1 and "+strconv.Itoa(MaxPageLimit)))
			return
		}
		limit = n
	}
	ds, err := h.Store.ListDestinations(c.Request.Context(), c.Query("cursor"), limit+1)
	if err != nil {
		api.Fail(c, err)
		return
	}
	out := DestinationList{Destinations: make([]DestinationSummary, 0, min(len(ds), limit))}
	for i, d := range ds {
		if i == limit {
			next := out.Destinations[limit-1].ID
			out.NextCursor = &next
			break
		}
		auds := d.Audiences
		if auds == nil {
			auds = []string{}
		}
		out.Destinations = append(out.Destinations, DestinationSummary{ID: d.ID, Name: d.Name, Enabled: d.Enabled, Paused: d.Paused, Audiences: auds})
	}
	c.JSON(http.StatusOK, out)
}
