package support

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/fault"
)

// Pagination of the delivery search and the dead-letter list.
const (
	DefaultPageLimit = 50
	MaxPageLimit     = 200
	// MaxReplay bounds how many dead letters one replay call requeues.
	MaxReplay = 10000
)

// DeliveryPage is the answer to GET /v1/deliveries and GET /v1/dead-letters.
type DeliveryPage struct {
	Deliveries []delivery.Record `json:"deliveries"`
	NextCursor *string           `json:"nextCursor"`
}

// ReplayRequest is the body of POST /v1/dead-letters/replay: either deliveryIds, or a filter
// whose destinationId is required. Force replays even dead letters whose destination already
// received a newer update of the same profile.
type ReplayRequest struct {
	DeliveryIDs []string      `json:"deliveryIds" validate:"omitempty,max=1000,dive,required"`
	Filter      *ReplayFilter `json:"filter"`
	Force       bool          `json:"force"`
}

// ReplayFilter selects dead letters of one destination.
type ReplayFilter struct {
	DestinationID string     `json:"destinationId" validate:"required"`
	Reason        string     `json:"reason"`
	Since         *time.Time `json:"since"`
	Until         *time.Time `json:"until"`
	Limit         int        `json:"limit" validate:"omitempty,min=1,max=10000"`
}

// ReplayResult is the answer to a replay: the deliveries requeued (others named were not
// dead-lettered and were left alone), and the dead letters skipped with the reason (today
// only newer_delivered: replaying would send an update older than one already delivered).
type ReplayResult struct {
	Replayed    int                `json:"replayed"`
	DeliveryIDs []string           `json:"deliveryIds"`
	Skipped     []delivery.Skipped `json:"skipped"`
}

var statuses = map[delivery.Status]bool{delivery.Pending: true, delivery.Retrying: true, delivery.Delivered: true, delivery.DeadLettered: true, delivery.Excluded: true}

// query reads the shared filters of the search and the dead-letter list.
func query(c *gin.Context) (delivery.Query, error) {
	q := delivery.Query{DestinationID: c.Query("destinationId"), Reason: c.Query("reason"), Cursor: c.Query("cursor"), Limit: DefaultPageLimit}
	var problems []fault.Problem
	if v := strings.TrimSpace(c.Query("identity")); v != "" {
		q.IdentityHash = delivery.HashIdentity(v)
	}
	if v := c.Query("status"); v != "" {
		if !statuses[delivery.Status(v)] {
			problems = append(problems, fault.Problem{Path: "query.status", Code: "invalid_status", Message: "status must be pending, retrying, delivered, dead_lettered or excluded"})
		}
		q.Status = delivery.Status(v)
	}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if v := c.Query(t.name); v != "" {
			at, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				problems = append(problems, fault.Problem{Path: "query." + t.name, Code: "invalid_time", Message: t.name + " must be an RFC 3339 time such as 2026-11-22T10:00:00Z"})
			}
			*t.dst = at
		}
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		problems = append(problems, fault.Problem{Path: "query.until", Code: "invalid_range", Message: "until must be after since"})
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxPageLimit {
			problems = append(problems, fault.Problem{Path: "query.limit", Code: "invalid_limit", Message: "limit must be between 1 and " + strconv.Itoa(MaxPageLimit)})
		}
		q.Limit = n
	}
	if len(problems) > 0 {
		return q, fault.Of(fault.Invalid, problems...)
	}
	return q, nil
}

func (h *Handlers) search(c *gin.Context) {
	q, err := query(c)
	if err != nil {
		api.Fail(c, err)
		return
	}
	h.page(c, q)
}

func (h *Handlers) deadLetters(c *gin.Context) {
	q, err := query(c)
	if err != nil {
		api.Fail(c, err)
		return
	}
	if q.Status != "" && q.Status != delivery.DeadLettered {
		api.Fail(c, fault.New(fault.Invalid, "query.status", "invalid_status", "dead letters all have status dead_lettered"))
		return
	}
	q.Status = delivery.DeadLettered
	h.page(c, q)
}

func (h *Handlers) page(c *gin.Context, q delivery.Query) {
	recs, next, err := h.Store.SearchDeliveries(c.Request.Context(), q)
	if err != nil {
		api.Fail(c, err)
		return
	}
	p := DeliveryPage{Deliveries: recs}
	if p.Deliveries == nil {
		p.Deliveries = []delivery.Record{}
	}
	if next != "" {
		p.NextCursor = &next
	}
	c.JSON(http.StatusOK, p)
}

func (h *Handlers) replay(c *gin.Context) {
	var req ReplayRequest
	if err := api.BindJSON(c, &req); err != nil {
		api.Fail(c, err)
		return
	}
	var f delivery.ReplayFilter
	switch {
	case len(req.DeliveryIDs) > 0 && req.Filter != nil:
		api.Fail(c, fault.New(fault.Invalid, "filter", "ambiguous_selection", "give deliveryIds or filter, not both"))
		return
	case len(req.DeliveryIDs) > 0:
		f = delivery.ReplayFilter{DeliveryIDs: req.DeliveryIDs, Limit: len(req.DeliveryIDs)}
	case req.Filter != nil:
		f = delivery.ReplayFilter{DestinationID: req.Filter.DestinationID, Reason: req.Filter.Reason, Limit: MaxReplay}
		if req.Filter.Limit > 0 {
			f.Limit = req.Filter.Limit
		}
		if req.Filter.Since != nil {
			f.Since = *req.Filter.Since
		}
		if req.Filter.Until != nil {
			f.Until = *req.Filter.Until
		}
		if _, err := h.Store.GetDestination(c.Request.Context(), f.DestinationID, false); err != nil {
			if fe := (*fault.Error)(nil); errors.As(err, &fe) && len(fe.Problems) == 1 {
				err = fault.New(fe.Kind, "filter.destinationId", fe.Problems[0].Code, fe.Problems[0].Message)
			}
			api.Fail(c, err)
			return
		}
	default:
		api.Fail(c, fault.New(fault.Invalid, "deliveryIds", "required", "give the deliveryIds to replay, or a filter with a destinationId"))
		return
	}
	f.Force = req.Force
	out, err := h.Store.ReplayDeadLetters(c.Request.Context(), f, h.now())
	if err != nil {
		api.Fail(c, err)
		return
	}
	ids := make([]string, len(out.Replayed))
	woken := map[string]bool{}
	for i, r := range out.Replayed {
		ids[i] = r.DeliveryID
		if h.Circuits != nil && !woken[r.DestinationID] {
			woken[r.DestinationID] = true
			h.Circuits.Wake(r.DestinationID)
		}
	}
	skipped := out.Skipped
	if skipped == nil {
		skipped = []delivery.Skipped{}
	}
	c.JSON(http.StatusOK, ReplayResult{Replayed: len(ids), DeliveryIDs: ids, Skipped: skipped})
}
