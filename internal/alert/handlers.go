package alert

import (
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/fault"
)

// Handlers serves the operator API for subscriptions and the alert list.
type Handlers struct {
	Service *Service
}

// Register adds the subscription routes to g (operator).
func (h *Handlers) Register(g gin.IRoutes) {
	g.POST("/alert-subscriptions", h.create)
	g.GET("/alert-subscriptions", h.list)
	g.GET("/alert-subscriptions/:id", h.get)
	g.PATCH("/alert-subscriptions/:id", h.patch)
	g.DELETE("/alert-subscriptions/:id", h.delete)
}

// RegisterAlerts adds GET /alerts to g (support).
func (h *Handlers) RegisterAlerts(g gin.IRoutes) { g.GET("/alerts", h.alerts) }

// SubscriptionList is the answer of GET /v1/alert-subscriptions.
type SubscriptionList struct {
	Subscriptions []Subscription `json:"subscriptions"`
}

// AlertList is the answer of GET /v1/alerts.
type AlertList struct {
	Alerts []Alert `json:"alerts"`
}

// Limits of GET /v1/alerts.
const (
	DefaultAlertLimit = 50
	MaxAlertLimit     = 500
)

func view(s Subscription) Subscription {
	if s.Events == nil {
		s.Events = []Rule{}
	}
	if s.DestinationIDs == nil {
		s.DestinationIDs = []string{}
	}
	s.Sealed = nil
	return s
}

func respond(c *gin.Context, status int, s Subscription) {
	c.Header("ETag", strconv.Quote(strconv.FormatInt(s.Version, 10)))
	c.JSON(status, view(s))
}

func (h *Handlers) create(c *gin.Context) {
	var req Request
	if err := api.BindJSON(c, &req); err != nil {
		api.Fail(c, err)
		return
	}
	s, err := h.Service.Create(c.Request.Context(), req)
	if err != nil {
		api.Fail(c, err)
		return
	}
	c.Header("Location", "/v1/alert-subscriptions/"+s.ID)
	respond(c, http.StatusCreated, s)
}

func (h *Handlers) list(c *gin.Context) {
	subs, err := h.Service.List(c.Request.Context())
	if err != nil {
		api.Fail(c, err)
		return
	}
	out := SubscriptionList{Subscriptions: make([]Subscription, 0, len(subs))}
	for _, s := range subs {
		out.Subscriptions = append(out.Subscriptions, view(s))
	}
	c.JSON(http.StatusOK, out)
}

func (h *Handlers) get(c *gin.Context) {
	s, err := h.Service.Get(c.Request.Context(), c.Param("id"))
	if err != nil {
		api.Fail(c, err)
		return
	}
	respond(c, http.StatusOK, s)
}

func (h *Handlers) patch(c *gin.Context) {
	var req Request
	if err := api.BindJSON(c, &req); err != nil {
		api.Fail(c, err)
		return
	}
	var expect *int64
	if v := strings.TrimSpace(c.GetHeader("If-Match")); v != "" && v != "*" {
		n, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(v, "W/"), `"`), 10, 64)
		if err != nil {
			api.Fail(c, fault.New(fault.Invalid, "header.If-Match", "invalid_version", "If-Match must be the subscription's version, such as 3"))
			return
		}
		expect = &n
	}
	s, err := h.Service.Update(c.Request.Context(), c.Param("id"), req, expect)
	if err != nil {
		api.Fail(c, err)
		return
	}
	respond(c, http.StatusOK, s)
}

func (h *Handlers) delete(c *gin.Context) {
	if err := h.Service.Delete(c.Request.Context(), c.Param("id")); err != nil {
		api.Fail(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

var alertStatuses = []string{StatusPending, StatusRetrying, StatusDelivered, StatusDeadLettered}

func (h *Handlers) alerts(c *gin.Context) {
	f := Filter{DestinationID: c.Query("destinationId"), SubscriptionID: c.Query("subscriptionId"), Event: c.Query("event"), Status: c.Query("status"), Limit: DefaultAlertLimit}
	var problems []fault.Problem
	if f.Event != "" && !slices.Contains(Events, f.Event) {
		problems = append(problems, fault.Problem{Path: "query.event", Code: "invalid_event", Message: "event must be one of " + strings.Join(Events, ", ")})
	}
	if f.Status != "" && !slices.Contains(alertStatuses, f.Status) {
		problems = append(problems, fault.Problem{Path: "query.status", Code: "invalid_status", Message: "status must be one of " + strings.Join(alertStatuses, ", ")})
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxAlertLimit {
			problems = append(problems, fault.Problem{Path: "query.limit", Code: "invalid_limit", Message: "limit must be between 1 and " + strconv.Itoa(MaxAlertLimit)})
		}
		f.Limit = n
	}
	if len(problems) > 0 {
		api.Fail(c, fault.Of(fault.Invalid, problems...))
		return
	}
	list, err := h.Service.Store.ListAlerts(c.Request.Context(), f)
	if err != nil {
		api.Fail(c, err)
		return
	}
	if list == nil {
		list = []Alert{}
	}
	c.JSON(http.StatusOK, AlertList{Alerts: list})
}
