// Package support owns the support API: what happened to an update, to a delivery, and to a
// destination as a whole; the delivery search, dead letters and their replay. It reads the
// delivery status the router and dispatcher record.
package support

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
)

// Store is what support reads (and, for replays, writes).
type Store interface {
	// The support page's reads (destinations.go, series.go).
	ListDestinations(ctx context.Context, afterID string, limit int) ([]destination.Destination, error)
	DestinationSeries(ctx context.Context, destID string, since, until time.Time, step time.Duration) (delivery.Series, error)
	DeliveryPayload(ctx context.Context, deliveryID string) (delivery.StoredPayload, error)

	GetUpdate(ctx context.Context, updateID string) (delivery.Update, []delivery.Record, error)
	GetDelivery(ctx context.Context, deliveryID string) (delivery.Record, error)
	GetDestination(ctx context.Context, id string, includeDeleted bool) (destination.Destination, error)
	DestinationStats(ctx context.Context, destID string, since time.Time) (delivery.Stats, error)
	LastAlert(ctx context.Context, destID string, kinds ...string) (*delivery.Alert, error)
	SearchDeliveries(ctx context.Context, q delivery.Query) ([]delivery.Record, string, error)
	ReplayDeadLetters(ctx context.Context, f delivery.ReplayFilter, now time.Time) (delivery.ReplayOutcome, error)
}

// Handlers serve the support API.
type Handlers struct {
	Store    Store
	Circuits Circuits         // the node's dispatcher; nil: circuit state from alerts only
	Channels ChannelLookup    // notification channels; nil: no channel stats
	Now      func() time.Time // nil: time.Now
}

// UpdateView is the answer to GET /v1/updates/{updateId}: the update and its fan-out.
type UpdateView struct {
	UpdateID   string            `json:"updateId"`
	ProfileKey string            `json:"profileKey"`
	ReceivedAt time.Time         `json:"receivedAt"`
	RoutedAt   time.Time         `json:"routedAt"`
	Audiences  []string          `json:"audiences"`
	Deliveries []delivery.Record `json:"deliveries"`
}

// Register adds the routes to g (which must already require the support role).
func (h *Handlers) Register(g gin.IRoutes) {
	g.GET("/updates/:updateId", h.update)
	g.GET("/deliveries", h.search)
	g.GET("/deliveries/:deliveryId", h.delivery)
	g.GET("/deliveries/:deliveryId/payload", h.payload)
	g.GET("/support/destinations", h.destinations)
	g.GET("/dead-letters", h.deadLetters)
	g.POST("/dead-letters/replay", h.replay)
}

// RegisterStats adds GET /destinations/{id}/stats (and /series) and
// GET /notification-channels/{id}/stats to g (support or operator role).
func (h *Handlers) RegisterStats(g gin.IRoutes) {
	g.GET("/destinations/:id/stats", h.stats)
	g.GET("/notification-channels/:id/stats", h.channelStats)
	g.GET("/destinations/:id/series", h.series)
}

func (h *Handlers) update(c *gin.Context) {
	u, recs, err := h.Store.GetUpdate(c.Request.Context(), c.Param("updateId"))
	if err != nil {
		api.Fail(c, err)
		return
	}
	if recs == nil {
		recs = []delivery.Record{}
	}
	if u.Audiences == nil {
		u.Audiences = []string{}
	}
	c.JSON(http.StatusOK, UpdateView{UpdateID: u.UpdateID, ProfileKey: u.ProfileKey, ReceivedAt: u.ReceivedAt, RoutedAt: u.RoutedAt, Audiences: u.Audiences, Deliveries: recs})
}

func (h *Handlers) delivery(c *gin.Context) {
	r, err := h.Store.GetDelivery(c.Request.Context(), c.Param("deliveryId"))
	if err != nil {
		api.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, r)
}
