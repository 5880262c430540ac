package access

import (
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/fault"
)

// Handlers serves the admin API for keys.
type Handlers struct {
	Store Store
	Auth  *Authenticator
	Now   func() time.Time
}

// CreateRequest is the body of POST /v1/keys.
type CreateRequest struct {
	Name string `json:"name" validate:"required,max=200"`
	Role Role   `json:"role" validate:"required,oneof=ingest operator support admin"`
}

// Created is the answer to POST /v1/keys: the only time the secret is shown.
type Created struct {
	Key
	Secret string `json:"key"`
}

// Register adds the key routes to g (which must already require the admin role).
func (h *Handlers) Register(g gin.IRoutes) {
	g.POST("/keys", h.create)
	g.GET("/keys", h.list)
	g.DELETE("/keys/:id", h.revoke)
}

func (h *Handlers) create(c *gin.Context) {
	var req CreateRequest
	if err := api.BindJSON(c, &req); err != nil {
		api.Fail(c, err)
		return
	}
	req.Name = strings.TrimSpace(req.Name)
	if req.Name == "" {
		api.Fail(c, fault.New(fault.Invalid, "name", "required", "name must not be blank"))
		return
	}
	secret, k, err := Generate(req.Name, req.Role, h.Now())
	if err != nil {
		api.Fail(c, err)
		return
	}
	if err := h.Store.CreateKey(c.Request.Context(), k); err != nil {
		api.Fail(c, err)
		return
	}
	c.JSON(http.StatusCreated, Created{Key: k, Secret: secret})
}

func (h *Handlers) list(c *gin.Context) {
	keys, err := h.Store.ListKeys(c.Request.Context())
	if err != nil {
		api.Fail(c, err)
		return
	}
	if keys == nil {
		keys = []Key{}
	}
	c.JSON(http.StatusOK, gin.H{"keys": keys})
}

func (h *Handlers) revoke(c *gin.Context) {
	id := c.Param("id")
	if err := h.Store.RevokeKey(c.Request.Context(), id, h.Now()); err != nil {
		api.Fail(c, err)
		return
	}
	h.Auth.Forget(id)
	c.Status(http.StatusNoContent)
}
