package support

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/fault"
)

// Windows of GET /v1/destinations/{id}/series and the width of their buckets.
var seriesWindows = map[string]struct{ span, step time.Duration }{
	"1h":  {time.Hour, time.Minute},
	"6h":  {6 * time.Hour, 5 * time.Minute},
	"24h": {24 * time.Hour, 15 * time.Minute},
}

// series answers GET /v1/destinations/{id}/series?window=1h|6h|24h: the destination's figures
// bucket by bucket, ending at the current bucket's end.
func (h *Handlers) series(c *gin.Context) {
	ctx := c.Request.Context()
	window := c.DefaultQuery("window", "1h")
	w, ok := seriesWindows[window]
	if !ok {
		api.Fail(c, fault.New(fault.Invalid, "query.window", "invalid_window", "window must be one of 1h, 6h or 24h"))
		return
	}
	d, err := h.Store.GetDestination(ctx, c.Param("id"), false)
	if err != nil {
		api.Fail(c, err)
		return
	}
	until := h.now().Truncate(w.step).Add(w.step)
	s, err := h.Store.DestinationSeries(ctx, d.ID, until.Add(-w.span), until, w.step)
	if err != nil {
		api.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, SeriesView{DestinationID: d.ID, Window: window, Series: s})
}

// SeriesView is the answer to GET /v1/destinations/{id}/series.
type SeriesView struct {
	DestinationID string `json:"destinationId"`
	Window        string `json:"window"`
	delivery.Series
}

// PayloadView is the answer to GET /v1/deliveries/{id}/payload.
type PayloadView struct {
	DeliveryID string `json:"deliveryId"`
	// Source: "dead_letter", "parked" or "none" (see delivery.StoredPayload).
	Source  string          `json:"source"`
	Payload json.RawMessage `json:"payload"`
}

// payload answers with the shaped payload qgate keeps for a delivery, if it keeps one: the
// exact JSON body that was (or will be) sent.
func (h *Handlers) payload(c *gin.Context) {
	p, err := h.Store.DeliveryPayload(c.Request.Context(), c.Param("deliveryId"))
	if err != nil {
		api.Fail(c, err)
		return
	}
	v := PayloadView{DeliveryID: p.DeliveryID, Source: p.Source, Payload: json.RawMessage("null")}
	if len(p.Payload) > 0 && json.Valid(p.Payload) {
		v.Payload = p.Payload
	}
	c.JSON(http.StatusOK, v)
}
