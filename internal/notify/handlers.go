package notify

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/fault"
)

// Handlers serves the operator API for channels.
type Handlers struct {
	Service *Service
}

// Register adds the channel routes to g (operator).
func (h *Handlers) Register(g gin.IRoutes) {
	g.POST("/notification-channels", h.create)
	g.GET("/notification-channels", h.list)
	g.GET("/notification-channels/:id", h.get)
	g.PATCH("/notification-channels/:id", h.patch)
	g.DELETE("/notification-channels/:id", h.delete)
}

// ChannelList is the answer of GET /v1/notification-channels.
type ChannelList struct {
	Channels []Channel `json:"channels"`
}

func respond(c *gin.Context, status int, ch Channel) {
	if ch.Events == nil {
		ch.Events = []string{}
	}
	if ch.ConnectionIDs == nil {
		ch.ConnectionIDs = []string{}
	}
	c.Header("ETag", strconv.Quote(strconv.FormatInt(ch.Version, 10)))
	c.JSON(status, ch)
}

func (h *Handlers) create(c *gin.Context) {
	var req ChannelRequest
	if err := api.BindJSON(c, &req); err != nil {
		api.Fail(c, err)
		return
	}
	ch, err := h.Service.Create(c.Request.Context(), req)
	if err != nil {
		api.Fail(c, err)
		return
	}
	c.Header("Location", "/v1/notification-channels/"+ch.ID)
	respond(c, http.StatusCreated, ch)
}

func (h *Handlers) list(c *gin.Context) {
	cs, err := h.Service.List(c.Request.Context())
	if err != nil {
		api.Fail(c, err)
		return
	}
	out := ChannelList{Channels: make([]Channel, 0, len(cs))}
	for _, ch := range cs {
		if ch.ConnectionIDs == nil {
			ch.ConnectionIDs = []string{}
		}
		out.Channels = append(out.Channels, ch)
	}
	c.JSON(http.StatusOK, out)
}

func (h *Handlers) get(c *gin.Context) {
	ch, err := h.Service.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		api.Fail(c, err)
		return
	}
	respond(c, http.StatusOK, ch)
}

func (h *Handlers) patch(c *gin.Context) {
	var req ChannelRequest
	if err := api.BindJSON(c, &req); err != nil {
		api.Fail(c, err)
		return
	}
	var expect *int64
	if v := strings.TrimSpace(c.GetHeader("If-Match")); v != "" && v != "*" {
		n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(v, "W/"), `"`), 10, 64)
		if err != nil {
			api.Fail(c, fault.New(fault.Invalid, "header.If-Match", "invalid_version", "If-Match must be the channel's version, such as 3"))
			return
		}
		expect = &n
	}
	ch, err := h.Service.Update(c.Request.Context(), c.Param("id"), req, expect)
	if err != nil {
		api.Fail(c, err)
		return
	}
	respond(c, http.StatusOK, ch)
}

func (h *Handlers) delete(c *gin.Context) {
	if err := h.Service.Delete(c.Request.Context(), c.Param("id")); err != nil {
		api.Fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// Support serves notification status for support: deliveries and replay of dead letters.
type Support struct {
	Store Store
	Now   func() time.Time
	Wake  func()
}

// Register adds GET /notifications and POST /notifications/replay to g (support).
func (s *Support) Register(g gin.IRoutes) {
	g.GET("/notifications", s.list)
	g.POST("/notifications/replay", s.replay)
}

// DeliveryList is the answer of GET /v1/notifications.
type DeliveryList struct {
	Deliveries []Delivery `json:"deliveries"`
}

func (s *Support) list(c *gin.Context) {
	f := Filter{Status: c.Query("status"), ChannelID: c.Query("channelId"), NotificationID: c.Query("notificationId"), Limit: 50}
	var problems []fault.Problem
	if f.Status != "" && !slices.Contains(Statuses, f.Status) {
		problems = append(problems, fault.Problem{Path: "query.status", Code: "invalid_status", Message: "status must be one of " + strings.Join(Statuses, ", ")})
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 500 {
			problems = append(problems, fault.Problem{Path: "query.limit", Code: "invalid_limit", Message: "limit must be a whole number from 1 to 500"})
		}
		f.Limit = n
	}
	if len(problems) > 0 {
		api.Fail(c, fault.Of(fault.Invalid, problems...))
		return
	}
	ds, err := s.Store.NotificationDeliveries(c.Request.Context(), f)
	if err != nil {
		api.Fail(c, err)
		return
	}
	if ds == nil {
		ds = []Delivery{}
	}
	c.JSON(http.StatusOK, DeliveryList{Deliveries: ds})
}

// ReplayRequest is the body of POST /v1/notifications/replay.
type ReplayRequest struct {
	DeliveryIDs []string `json:"deliveryIds" validate:"required,min=1,max=1000"`
}

// ReplayResult is its answer.
type ReplayResult struct {
	Replayed int `json:"replayed"`
}

func (s *Support) replay(c *gin.Context) {
	var req ReplayRequest
	if err := api.BindJSON(c, &req); err != nil {
		api.Fail(c, err)
		return
	}
	now := time.Now().UTC()
	if s.Now != nil {
		now = s.Now().UTC()
	}
	n, err := s.Store.ReplayNotifications(c.Request.Context(), req.DeliveryIDs, now)
	if err != nil {
		api.Fail(c, err)
		return
	}
	if n > 0 && s.Wake != nil {
		s.Wake()
	}
	c.JSON(http.StatusOK, ReplayResult{Replayed: n})
}
