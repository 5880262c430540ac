package survey

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/fault"
)

// Handlers serves the operator API for survey connections.
type Handlers struct {
	Service *Service
}

// Register adds the connection routes to g (which must already require the operator role).
func (h *Handlers) Register(g gin.IRoutes) {
	g.POST("/survey-connections", h.create)
	g.GET("/survey-connections", h.list)
	g.GET("/survey-connections/:id", h.get)
	g.PATCH("/survey-connections/:id", h.patch)
	g.DELETE("/survey-connections/:id", h.delete)
	g.POST("/survey-connections/:id/test", h.test)
	g.POST("/survey-connections/:id/sync", h.sync)
}

// ConnectionList is the answer of GET /v1/survey-connections.
type ConnectionList struct {
	Connections []Connection `json:"connections"`
}

func respond(c *gin.Context, status int, conn Connection) {
	c.Header("ETag", strconv.Quote(strconv.FormatInt(conn.Version, 10)))
	c.JSON(status, conn)
}

func (h *Handlers) create(c *gin.Context) {
	var req ConnectionRequest
	if err := api.BindJSON(c, &req); err != nil {
		api.Fail(c, err)
		return
	}
	conn, err := h.Service.Create(c.Request.Context(), req)
	if err != nil {
		api.Fail(c, err)
		return
	}
	c.Header("Location", "/v1/survey-connections/"+conn.ID)
	respond(c, http.StatusCreated, conn)
}

func (h *Handlers) list(c *gin.Context) {
	cs, err := h.Service.List(c.Request.Context())
	if err != nil {
		api.Fail(c, err)
		return
	}
	if cs == nil {
		cs = []Connection{}
	}
	c.JSON(http.StatusOK, ConnectionList{Connections: cs})
}

func (h *Handlers) get(c *gin.Context) {
	conn, err := h.Service.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		api.Fail(c, err)
		return
	}
	respond(c, http.StatusOK, conn)
}

func (h *Handlers) patch(c *gin.Context) {
	var req ConnectionRequest
	if err := api.BindJSON(c, &req); err != nil {
		api.Fail(c, err)
		return
	}
	var expect *int64
	if v := strings.TrimSpace(c.GetHeader("If-Match")); v != "" && v != "*" {
		n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(v, "W/"), `"`), 10, 64)
		if err != nil {
			api.Fail(c, fault.New(fault.Invalid, "header.If-Match", "invalid_version", "If-Match must be the connection's version, such as 3"))
			return
		}
		if req.Version != nil && *req.Version != n {
			api.Fail(c, fault.New(fault.Invalid, "version", "invalid_version", "the body's version and If-Match disagree"))
			return
		}
		expect = &n
	}
	conn, err := h.Service.Update(c.Request.Context(), c.Param("id"), req, expect)
	if errors.Is(err, ErrVersionConflict) && expect != nil {
		err = fault.New(fault.Conflict, "header.If-Match", "version_conflict", ErrVersionConflict.Problems[0].Message)
	}
	if err != nil {
		api.Fail(c, err)
		return
	}
	respond(c, http.StatusOK, conn)
}

func (h *Handlers) delete(c *gin.Context) {
	if err := h.Service.Delete(c.Request.Context(), c.Param("id")); err != nil {
		api.Fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (h *Handlers) test(c *gin.Context) {
	res, err := h.Service.Test(c.Request.Context(), c.Param("id"))
	if err != nil {
		api.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

func (h *Handlers) sync(c *gin.Context) {
	conn, err := h.Service.RequestSync(c.Request.Context(), c.Param("id"))
	if err != nil {
		api.Fail(c, err)
		return
	}
	c.JSON(http.StatusAccepted, conn)
}
