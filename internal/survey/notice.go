package survey

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/qgate/qgate/internal/notify"
)

// Notice is the JSON body of a survey notification (schemas/survey-notification.schema.json).
type Notice struct {
	ID           string              `json:"id"`
	Type         string              `json:"type"`
	OccurredAt   time.Time           `json:"occurredAt"`
	ConnectionID string              `json:"connectionId"`
	Survey       NoticeSurvey        `json:"survey"`
	Recipient    *NoticeRecipient    `json:"recipient"`
	Distribution *NoticeDistribution `json:"distribution"`
	ExpiresAt    *time.Time          `json:"expiresAt"`
	Links        NoticeLinks         `json:"links"`

	subject string // notify.Message.Subject: the recipient of a distribution
}

// NoticeSurvey names the survey.
type NoticeSurvey struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// NoticeRecipient is who owes the response.
type NoticeRecipient struct {
	Email     string `json:"email"`
	FirstName string `json:"firstName"`
	LastName  string `json:"lastName"`
}

// NoticeDistribution is the distribution and its stats.
type NoticeDistribution struct {
	ID        string     `json:"id"`
	SentAt    *time.Time `json:"sentAt"`
	ExpiresAt *time.Time `json:"expiresAt"`
	Stats     Stats      `json:"stats"`
}

// NoticeLinks are the deep links; respond is null for brand-admin notices.
type NoticeLinks struct {
	Respond *string `json:"respond"`
	Survey  string  `json:"survey"`
	Review  string  `json:"review"`
}

// NoticeID is the stable ID of a notification: one per (type, connection, subject). The
// subject of survey.request is the recipient of a distribution; of survey.expiring the same
// recipient and the due date (a moved due date is a new reminder); of survey.stats the
// distribution and its expiry.
func NoticeID(typ, connID string, subject ...string) string {
	h := sha256.New()
	h.Write([]byte(typ + "\x00" + connID))
	for _, s := range subject {
		h.Write([]byte("\x00" + s))
	}
	return "ntf_" + hex.EncodeToString(h.Sum(nil))[:32]
}

func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func (n Notice) message() (notify.Message, error) {
	body, err := json.Marshal(n)
	if err != nil {
		return notify.Message{}, fmt.Errorf("encode notice %s: %w", n.ID, err)
	}
	m := notify.Message{ID: n.ID, Type: n.Type, ConnectionID: n.ConnectionID, Subject: n.subject, OccurredAt: n.OccurredAt, Body: body}
	if n.Recipient != nil {
		m.Email = n.Recipient.Email
	}
	if m.Subject == "" && n.Distribution != nil {
		m.Subject = n.Distribution.ID
	}
	due := "no due date"
	if n.ExpiresAt != nil {
		due = "due " + n.ExpiresAt.UTC().Format("Mon 2 Jan 2006 15:04 MST")
	}
	switch n.Type {
	case notify.TypeSurveyRequest:
		m.Text = fmt.Sprintf("New survey for %s: %q, %s.", n.Recipient.Email, n.Survey.Name, due)
	case notify.TypeSurveyExpiring:
		m.Text = fmt.Sprintf("Survey about to expire for %s: %q, %s.", n.Recipient.Email, n.Survey.Name, due)
	case notify.TypeLowCompletion:
		s := n.Distribution.Stats
		m.Text = fmt.Sprintf("Low completion on %q: %d out of %d completed, %s.", n.Survey.Name, s.Finished, s.Sent, strings.Replace(due, "due", "links expire", 1))
	case notify.TypeBounceSpike:
		s := n.Distribution.Stats
		m.Text = fmt.Sprintf("Delivery problems on %q: %d bounced and %d complaints out of %d sent.", n.Survey.Name, s.Bounced, s.Complaints, s.Sent)
	case notify.TypeSurveyStats:
		s := n.Distribution.Stats
		m.Text = fmt.Sprintf("%q: %d out of %d completed (opened %d, started %d, bounced %d, failed %d, complaints %d), %s.",
			n.Survey.Name, s.Finished, s.Sent, s.Opened, s.Started, s.Bounced, s.Failed, s.Complaints, strings.Replace(due, "due", "links expire", 1))
	}
	if n.Links.Respond != nil && *n.Links.Respond != "" {
		m.Links = append(m.Links, notify.Link{Label: "Respond to Survey in Qualtrics", URL: *n.Links.Respond})
	}
	if n.Distribution != nil && n.Links.Review != "" {
		m.Links = append(m.Links, notify.Link{Label: "Review Distributions", URL: n.Links.Review})
	}
	return m, nil
}
