// Package support owns the support API: what happened to an update, to a delivery, and (later)
// to a destination as a whole. It reads the delivery status the router and dispatcher record.
package support

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/delivery"
)

// Store is what support reads.
type Store interface {
	GetUpdate(ctx context.Context, updateID string) (delivery.Update, []delivery.Record, error)
	GetDelivery(ctx context.Context, deliveryID string) (delivery.Record, error)
}

// Handlers serve the support API.
type Handlers struct {
	Store Store
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
	g.GET("/deliveries/:deliveryId", h.delivery)
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
