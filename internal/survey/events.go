package survey

import (
	"context"
	"crypto/subtle"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/fault"
	"github.com/qgate/qgate/internal/notify"
)

// Canceller cancels queued notifications about a subject (notify.Outbox implements it).
type Canceller interface {
	Cancel(ctx context.Context, connID, subject string, types []string, reason string) (int, error)
}

// Events receives Qualtrics' event-subscription posts — the push path beside polling. The
// operator registers https://<qgate>/v1/survey-connections/{id}/events?key=<eventsKey> with
// POST /API/v3/eventsubscriptions for the topics below. Qualtrics posts form-encoded bodies:
//
//   - surveyengine.completedResponse.{SurveyID}: the recipient (RecipientID, DistributionID) is
//     marked SurveyFinished at once, and their queued survey.request/survey.expiring are
//     cancelled, so reminders stop within seconds instead of at the next sync;
//   - controlpanel.activateSurvey / deactivateSurvey: the survey's isActive changes.
//
// Other topics are accepted and ignored. The events key is the only credential (Qualtrics
// cannot send a bearer key), compared in constant time.
type Events struct {
	Store     Store
	Box       Opener
	Canceller Canceller // nil: nothing to cancel
	Now       func() time.Time
}

// Register adds POST /survey-connections/{id}/events to g (no bearer key: the events key).
func (h *Events) Register(g gin.IRoutes) {
	g.POST("/survey-connections/:id/events", h.receive)
}

// MaxEventBody bounds an event post.
const MaxEventBody = 64 << 10

var errEventsKey = fault.New(fault.Unauthorized, "query.key", "unauthorized", "send the connection's eventsKey as ?key=")

// EventResult is the answer to an event post.
type EventResult struct {
	Topic     string `json:"topic"`
	Applied   bool   `json:"applied"`
	Cancelled int    `json:"cancelled"`
}

func (h *Events) receive(c *gin.Context) {
	ctx := c.Request.Context()
	conn, err := h.Store.GetSurveyConnection(ctx, c.Param("id"))
	if err != nil || len(conn.EventsKeySealed) == 0 {
		api.Fail(c, errEventsKey) // the same answer for an unknown connection: no probing
		return
	}
	key, err := h.Box.Open(eventsKeyAAD(conn.ID), conn.EventsKeySealed)
	if err != nil || subtle.ConstantTimeCompare([]byte(key), []byte(c.Query("key"))) != 1 {
		api.Fail(c, errEventsKey)
		return
	}
	if mt, _, _ := mime.ParseMediaType(c.GetHeader("Content-Type")); mt != "application/x-www-form-urlencoded" {
		api.Fail(c, fault.New(fault.UnsupportedMedia, "header.Content-Type", "unsupported_media_type", "Qualtrics posts events as application/x-www-form-urlencoded"))
		return
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, MaxEventBody)
	if err := c.Request.ParseForm(); err != nil {
		api.Fail(c, fault.New(fault.Malformed, "", "malformed_form", "the body is not a form"))
		return
	}
	f := c.Request.PostForm
	topic := f.Get("Topic")
	res := EventResult{Topic: topic}
	switch {
	case strings.HasPrefix(topic, "surveyengine.completedResponse."):
		dist, contact := f.Get("DistributionID"), f.Get("RecipientID")
		if dist == "" || contact == "" {
			api.Fail(c, fault.New(fault.Invalid, "RecipientID", "required", "a completed response needs DistributionID and RecipientID"))
			return
		}
		at := time.Now().UTC()
		if h.Now != nil {
			at = h.Now().UTC()
		}
		if t, err := time.Parse(time.RFC3339, f.Get("CompletedDate")); err == nil {
			at = t.UTC()
		}
		ok, err := h.Store.MarkSurveyResponse(ctx, conn.ID, dist, contact, StatusSurveyFinished, f.Get("ResponseID"), at)
		if err != nil {
			api.Fail(c, err)
			return
		}
		res.Applied = ok
		if h.Canceller != nil {
			n, err := h.Canceller.Cancel(ctx, conn.ID, Subject(dist, contact),
				[]string{notify.TypeSurveyRequest, notify.TypeSurveyExpiring}, "recipient finished (Qualtrics event)")
			if err != nil {
				api.Fail(c, err)
				return
			}
			res.Cancelled = n
		}
	case topic == "controlpanel.activateSurvey", topic == "controlpanel.deactivateSurvey":
		ok, err := h.Store.SetSurveyActive(ctx, conn.ID, f.Get("SurveyID"), topic == "controlpanel.activateSurvey")
		if err != nil {
			api.Fail(c, err)
			return
		}
		res.Applied = ok
	}
	c.JSON(http.StatusOK, res)
}
