package support

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/fault"
	"github.com/qgate/qgate/internal/notify"
)

// Windows of GET /v1/destinations/{id}/stats.
var windows = map[string]time.Duration{"1h": time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour}

// Circuits reports what a node knows of a destination's circuit breaker: its state here, and
// whether this node holds the destination (only then is the state authoritative).
type Circuits interface {
	Circuit(destinationID string) (state string, owned bool)
	// Wake has the node's dispatcher look at a destination's parked deliveries now.
	Wake(destinationID string)
}

// Circuit is the circuit part of a destination's stats.
type Circuit struct {
	// State is closed, open or half-open.
	State string `json:"state"`
	// Source says where the state comes from: "node" when the answering node sends to the
	// destination, "alerts" when it was read from the last circuit alert any node recorded.
	Source string `json:"source"`
	// Since is when the circuit last opened or closed, if it ever did.
	Since *time.Time `json:"since,omitempty"`
}

// StatsView is the answer to GET /v1/destinations/{id}/stats.
type StatsView struct {
	DestinationID string    `json:"destinationId"`
	Window        string    `json:"window"`
	Since         time.Time `json:"since"`
	Paused        bool      `json:"paused"`
	Circuit       Circuit   `json:"circuit"`
	delivery.Stats
}

func (h *Handlers) stats(c *gin.Context) {
	ctx := c.Request.Context()
	window, span, ok := statsWindow(c)
	if !ok {
		return
	}
	d, err := h.Store.GetDestination(ctx, c.Param("id"), false)
	if err != nil {
		api.Fail(c, err)
		return
	}
	h.writeStats(c, d.ID, d.Paused, window, span)
}

// ChannelLookup finds notification channels, whose notifications travel as lanes of the
// delivery engine (the store).
type ChannelLookup interface {
	GetChannel(ctx context.Context, id string) (notify.Channel, error)
}

// channelStats answers GET /v1/notification-channels/{id}/stats: a channel's figures, as a
// destination's (destinationId is the channel's ID; a channel is never paused).
func (h *Handlers) channelStats(c *gin.Context) {
	window, span, ok := statsWindow(c)
	if !ok {
		return
	}
	if h.Channels == nil {
		api.Fail(c, notify.ErrNotFound)
		return
	}
	ch, err := h.Channels.GetChannel(c.Request.Context(), c.Param("id"))
	if err != nil {
		api.Fail(c, err)
		return
	}
	h.writeStats(c, ch.ID, false, window, span)
}

// statsWindow reads ?window= of a stats request (default 24h); it answers 422 and returns false
// when the window is not one of windows.
func statsWindow(c *gin.Context) (string, time.Duration, bool) {
	window := c.DefaultQuery("window", "24h")
	span, ok := windows[window]
	if !ok {
		api.Fail(c, fault.New(fault.Invalid, "query.window", "invalid_window", "window must be one of 1h, 24h or 7d"))
	}
	return window, span, ok
}

// writeStats answers with the figures of lane id (a destination or a channel).
func (h *Handlers) writeStats(c *gin.Context, id string, paused bool, window string, span time.Duration) {
	ctx := c.Request.Context()
	now := h.now()
	since := now.Add(-span)
	st, err := h.Store.DestinationStats(ctx, id, since)
	if err != nil {
		api.Fail(c, err)
		return
	}
	v := StatsView{DestinationID: id, Window: window, Since: since, Paused: paused, Stats: st}
	last, err := h.Store.LastAlert(ctx, id, "circuit_opened", "circuit_closed")
	if err != nil {
		api.Fail(c, err)
		return
	}
	if last != nil {
		v.Circuit.Since = &last.At
	}
	state, owned := "closed", false
	if h.Circuits != nil {
		state, owned = h.Circuits.Circuit(id)
	}
	switch {
	case owned:
		v.Circuit.State, v.Circuit.Source = state, "node"
	case last != nil && last.Kind == "circuit_opened":
		v.Circuit.State, v.Circuit.Source = "open", "alerts"
	default:
		v.Circuit.State, v.Circuit.Source = "closed", "alerts"
	}
	c.JSON(http.StatusOK, v)
}

func (h *Handlers) now() time.Time {
	if h.Now != nil {
		return h.Now().UTC()
	}
	return time.Now().UTC()
}
