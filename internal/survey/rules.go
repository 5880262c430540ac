package survey

import (
	"time"

	"github.com/qgate/qgate/internal/notify"
)

// Rules decides which notifications the synced state calls for at now. It is pure: the same
// state gives the same notification IDs, so evaluating again after every sync, on any node,
// publishes nothing twice (the store keeps each ID once).
//
//   - survey.request: a recipient whose invitation was delivered (status Success, or already
//     Opened or started) and who is not done, with a link not yet expired.
//   - survey.expiring: such a recipient (or one still Pending delivery is not told: they have
//     no email yet) whose due date — the earlier of the link's and the survey's expiry — falls
//     within expiryLead; never once they finished.
//   - survey.stats: a distribution whose links expire within expiryLead, for brand admins;
//     with it survey.lowCompletion when finished/sent is below lowCompletionBelow.
//   - survey.bounceSpike: a live distribution's (bounced+complaints)/sent above
//     bounceRateAbove (at least MinSentForBounceAlert sent), once per distribution.
func Rules(c Connection, recipients []Recipient, expiring []DistributionView, now time.Time) []Notice {
	lead := c.ExpiryLead.D()
	var out []Notice
	for _, r := range recipients {
		if !Delivered(r.Status) || Done(r.Status) || r.Email == "" {
			continue
		}
		due := EarliestOf(r.LinkExpiresAt, r.SurveyExpiresAt)
		if due != nil && !due.After(now) {
			continue
		}
		r.BaseURL, r.BrandID = c.BaseURL, c.BrandID
		links := RecipientLinks(r)
		base := Notice{
			ConnectionID: c.ID,
			Survey:       NoticeSurvey{ID: r.SurveyID, Name: r.SurveyName},
			Recipient:    &NoticeRecipient{Email: r.Email, FirstName: r.FirstName, LastName: r.LastName},
			ExpiresAt:    due,
			Links:        NoticeLinks{Respond: &links.Respond, Survey: links.Survey, Review: links.Review},
		}
		base.subject = Subject(r.DistributionID, r.ContactID)
		req := base
		req.Type = notify.TypeSurveyRequest
		req.ID = NoticeID(req.Type, c.ID, r.DistributionID, r.ContactID)
		req.OccurredAt = now
		if r.SentAt != nil {
			req.OccurredAt = *r.SentAt
		}
		out = append(out, req)
		if due != nil && !due.After(now.Add(lead)) {
			exp := base
			exp.Type = notify.TypeSurveyExpiring
			exp.ID = NoticeID(exp.Type, c.ID, r.DistributionID, r.ContactID, stamp(due))
			exp.OccurredAt = due.Add(-lead)
			if exp.OccurredAt.Before(req.OccurredAt) {
				exp.OccurredAt = req.OccurredAt
			}
			out = append(out, exp)
		}
	}
	for _, d := range expiring {
		links := SurveyLinks(c.BaseURL, c.BrandID, d.SurveyID)
		admin := func(typ string, at time.Time, subject ...string) Notice {
			return Notice{
				ID:           NoticeID(typ, c.ID, append([]string{d.ID}, subject...)...),
				Type:         typ,
				OccurredAt:   at,
				ConnectionID: c.ID,
				Survey:       NoticeSurvey{ID: d.SurveyID, Name: d.SurveyName},
				Distribution: &NoticeDistribution{ID: d.ID, SentAt: d.SendDate, ExpiresAt: d.LinkExpiresAt, Stats: d.Stats},
				ExpiresAt:    d.LinkExpiresAt,
				Links:        NoticeLinks{Survey: links.Survey, Review: links.Review},
			}
		}
		live := d.LinkExpiresAt == nil || d.LinkExpiresAt.After(now)
		if s := d.Stats; c.BounceRateAbove > 0 && live && s.Sent >= MinSentForBounceAlert &&
			float64(s.Bounced+s.Complaints)/float64(s.Sent) > c.BounceRateAbove {
			out = append(out, admin(notify.TypeBounceSpike, now))
		}
		if d.LinkExpiresAt == nil || !live || d.LinkExpiresAt.After(now.Add(lead)) {
			continue
		}
		at := d.LinkExpiresAt.Add(-lead)
		out = append(out, admin(notify.TypeSurveyStats, at, stamp(d.LinkExpiresAt)))
		if s := d.Stats; c.LowCompletionBelow > 0 && s.Sent > 0 && float64(s.Finished)/float64(s.Sent) < c.LowCompletionBelow {
			out = append(out, admin(notify.TypeLowCompletion, at, stamp(d.LinkExpiresAt)))
		}
	}
	return out
}

// MinSentForBounceAlert is the fewest emails sent before a bounce rate means anything.
const MinSentForBounceAlert = 10

// Subject names a recipient of a distribution in notifications (notify.Message.Subject).
func Subject(distID, contactID string) string { return distID + "/" + contactID }
