package notify

import (
	"net/http"
	"strconv"
	"strings"

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
