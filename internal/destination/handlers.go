package destination

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/fault"
)

// Handlers serves the operator API for destinations.
type Handlers struct {
	Service *Service
}

// Register adds the destination routes to g (which must already require the operator role).
func (h *Handlers) Register(g gin.IRoutes) {
	g.POST("/destinations", h.create)
	g.GET("/destinations", h.list)
	g.GET("/destinations/:id", h.get)
	g.PATCH("/destinations/:id", h.patch)
	g.DELETE("/destinations/:id", h.delete)
	g.POST("/destinations/:id/pause", h.pause)
	g.POST("/destinations/:id/resume", h.resume)
	g.POST("/destinations/:id/test", h.test)
}

// Pagination of GET /v1/destinations.
const (
	DefaultListLimit = 50
	MaxListLimit     = 200
)

// ListPage is the answer to GET /v1/destinations.
type ListPage struct {
	Destinations []Destination `json:"destinations"`
	NextCursor   *string       `json:"nextCursor"`
}

// TestRequest is the optional body of POST /v1/destinations/{id}/test.
type TestRequest struct {
	Profile json.RawMessage `json:"profile"`
}

func respond(c *gin.Context, status int, d Destination) {
	c.Header("ETag", strconv.Quote(strconv.FormatInt(d.Version, 10)))
	c.JSON(status, view(d))
}

// view prepares a destination for a response: never a token, lists never null.
func view(d Destination) Destination {
	d.Token, d.SealedToken = "", nil
	if d.IdentityMappings == nil {
		d.IdentityMappings = []IdentityMapping{}
	}
	if d.AttributeMappings == nil {
		d.AttributeMappings = []AttributeMapping{}
	}
	if d.Audiences == nil {
		d.Audiences = []string{}
	}
	if d.ConsentPolicy.Require == nil {
		d.ConsentPolicy.Require = []string{}
	}
	return d
}

func (h *Handlers) create(c *gin.Context) {
	var req Request
	if err := api.BindJSON(c, &req); err != nil {
		api.Fail(c, err)
		return
	}
	d, err := h.Service.Create(c.Request.Context(), req)
	if err != nil {
		api.Fail(c, err)
		return
	}
	c.Header("Location", "/v1/destinations/"+d.ID)
	respond(c, http.StatusCreated, d)
}

func (h *Handlers) list(c *gin.Context) {
	limit := DefaultListLimit
	var problems []fault.Problem
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			problems = append(problems, fault.Problem{Path: "query.limit", Code: "invalid_limit", Message: "limit must be a whole number from 1 to " + strconv.Itoa(MaxListLimit)})
		} else {
			limit = n
		}
	}
	after, ok := decodeCursor(c.Query("cursor"))
	if !ok {
		problems = append(problems, fault.Problem{Path: "query.cursor", Code: "invalid_cursor", Message: "pass back the nextCursor of a previous page"})
	}
	if len(problems) > 0 {
		api.Fail(c, fault.Of(fault.Invalid, problems...))
		return
	}
	ds, more, err := h.Service.List(c.Request.Context(), after, limit)
	if err != nil {
		api.Fail(c, err)
		return
	}
	page := ListPage{Destinations: make([]Destination, 0, len(ds))}
	for _, d := range ds {
		page.Destinations = append(page.Destinations, view(d))
	}
	if more && len(ds) > 0 {
		next := encodeCursor(ds[len(ds)-1].ID)
		page.NextCursor = &next
	}
	c.JSON(http.StatusOK, page)
}

// Cursors are opaque to clients: the last ID of the page, base64url-encoded.
func encodeCursor(id string) string { return base64.RawURLEncoding.EncodeToString([]byte(id)) }

func decodeCursor(s string) (string, bool) {
	if s == "" {
		return "", true
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || !strings.HasPrefix(string(b), "dst_") {
		return "", false
	}
	return string(b), true
}

func (h *Handlers) get(c *gin.Context) {
	d, err := h.Service.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		api.Fail(c, err)
		return
	}
	respond(c, http.StatusOK, d)
}

func (h *Handlers) patch(c *gin.Context) {
	var req Request
	if err := api.BindJSON(c, &req); err != nil {
		api.Fail(c, err)
		return
	}
	expect := req.Version
	fromHeader := false
	if v := strings.TrimSpace(c.GetHeader("If-Match")); v != "" && v != "*" { // "*": any version
		n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(strings.TrimSpace(v), "W/"), `"`), 10, 64)
		if err != nil {
			api.Fail(c, fault.New(fault.Invalid, "header.If-Match", "invalid_version", "If-Match must be the destination's version, such as 3"))
			return
		}
		if expect != nil && *expect != n {
			api.Fail(c, fault.New(fault.Invalid, "version", "invalid_version", "the body's version and If-Match disagree"))
			return
		}
		expect, fromHeader = &n, true
	}
	d, err := h.Service.Update(c.Request.Context(), c.Param("id"), req, expect)
	if errors.Is(err, ErrVersionConflict) && fromHeader {
		err = fault.New(fault.Conflict, "header.If-Match", ErrVersionConflict.Problems[0].Code, ErrVersionConflict.Problems[0].Message)
	}
	if err != nil {
		api.Fail(c, err)
		return
	}
	respond(c, http.StatusOK, d)
}

func (h *Handlers) delete(c *gin.Context) {
	if err := h.Service.Delete(c.Request.Context(), c.Param("id")); err != nil {
		api.Fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

func (h *Handlers) pause(c *gin.Context)  { h.setPaused(c, true) }
func (h *Handlers) resume(c *gin.Context) { h.setPaused(c, false) }

func (h *Handlers) setPaused(c *gin.Context, paused bool) {
	d, err := h.Service.SetPaused(c.Request.Context(), c.Param("id"), paused)
	if err != nil {
		api.Fail(c, err)
		return
	}
	respond(c, http.StatusOK, d)
}

func (h *Handlers) test(c *gin.Context) {
	var req TestRequest
	if c.Request.ContentLength != 0 && (c.Request.ContentLength > 0 || c.GetHeader("Content-Type") != "") {
		if err := api.BindJSON(c, &req); err != nil {
			api.Fail(c, err)
			return
		}
		if p := bytes.TrimSpace(req.Profile); len(p) > 0 && !bytes.Equal(p, []byte("null")) && p[0] != '{' {
			api.Fail(c, fault.New(fault.Invalid, "profile", "invalid_type", "profile must be a JSON object"))
			return
		} else if bytes.Equal(p, []byte("null")) {
			req.Profile = nil
		}
	}
	res, err := h.Service.Test(c.Request.Context(), c.Param("id"), req.Profile)
	if err != nil {
		api.Fail(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}
