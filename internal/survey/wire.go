package survey

import (
	"encoding/json"
	"strings"
	"time"
)

// The API v3 shapes as recorded (SURVEYS.md), decoded leniently: dates may be null, empty or
// "0000-00-00 00:00:00", and history's surveyLink is a string where distributions' is an object.

// qtime is an optional Qualtrics date.
type qtime struct{ t *time.Time }

func (q *qtime) UnmarshalJSON(b []byte) error {
	var s *string
	if err := json.Unmarshal(b, &s); err != nil || s == nil {
		return nil
	}
	v := strings.TrimSpace(*s)
	if v == "" || strings.HasPrefix(v, "0000-00-00") {
		return nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			t = t.UTC()
			q.t = &t
			return nil
		}
	}
	return nil
}

func (q qtime) or(def time.Time) time.Time {
	if q.t == nil {
		return def
	}
	return *q.t
}

// str decodes a string that may be null.
type str string

func (s *str) UnmarshalJSON(b []byte) error {
	var v *string
	if err := json.Unmarshal(b, &v); err == nil && v != nil {
		*s = str(*v)
	}
	return nil
}

type wireUser struct {
	ID            str `json:"id"`
	Username      str `json:"username"`
	Email         str `json:"email"`
	FirstName     str `json:"firstName"`
	LastName      str `json:"lastName"`
	UserType      str `json:"userType"`
	AccountStatus str `json:"accountStatus"`
	DivisionID    str `json:"divisionId"`
}

func (w wireUser) user() User {
	return User{ID: string(w.ID), Username: string(w.Username), Email: string(w.Email), FirstName: string(w.FirstName),
		LastName: string(w.LastName), UserType: string(w.UserType), AccountStatus: string(w.AccountStatus), DivisionID: string(w.DivisionID)}
}

// wireSurvey is an element of GET surveys or, with Expiration, GET surveys/{id} — which
// names the modification date lastModifiedDate.
type wireSurvey struct {
	ID               str             `json:"id"`
	Name             str             `json:"name"`
	OwnerID          str             `json:"ownerId"`
	LastModified     qtime           `json:"lastModified"`
	LastModifiedDate qtime           `json:"lastModifiedDate"`
	CreationDate     qtime           `json:"creationDate"`
	IsActive         bool            `json:"isActive"`
	Expiration       *wireExpiration `json:"expiration"`
}

type wireExpiration struct {
	StartDate qtime `json:"startDate"`
	EndDate   qtime `json:"endDate"`
}

func (w wireSurvey) survey(connID string) Survey {
	lm := w.LastModified
	if lm.t == nil {
		lm = w.LastModifiedDate
	}
	sv := Survey{ID: string(w.ID), ConnectionID: connID, Name: string(w.Name), OwnerID: string(w.OwnerID),
		LastModified: lm.or(time.Time{}), CreationDate: w.CreationDate.or(time.Time{}), IsActive: w.IsActive}
	if w.Expiration != nil {
		sv.ExpiresAt = w.Expiration.EndDate.t
	}
	return sv
}

type wireDistribution struct {
	ID             str   `json:"id"`
	OwnerID        str   `json:"ownerId"`
	OrganizationID str   `json:"organizationId"`
	RequestType    str   `json:"requestType"`
	RequestStatus  str   `json:"requestStatus"`
	SendDate       qtime `json:"sendDate"`
	CreatedDate    qtime `json:"createdDate"`
	Recipients     struct {
		MailingListID str `json:"mailingListId"`
	} `json:"recipients"`
	SurveyLink struct {
		SurveyID       str   `json:"surveyId"`
		ExpirationDate qtime `json:"expirationDate"`
	} `json:"surveyLink"`
	Stats Stats `json:"stats"`
}

func (w wireDistribution) distribution(connID, surveyID string) Distribution {
	return Distribution{ID: string(w.ID), ConnectionID: connID, SurveyID: surveyID, OwnerID: string(w.OwnerID),
		OrganizationID: string(w.OrganizationID), MailingListID: string(w.Recipients.MailingListID),
		RequestType: string(w.RequestType), RequestStatus: string(w.RequestStatus),
		CreatedDate: w.CreatedDate.or(time.Time{}), SendDate: w.SendDate.t, LinkExpiresAt: w.SurveyLink.ExpirationDate.t, Stats: w.Stats}
}

type wireHistory struct {
	ContactID           str   `json:"contactId"`
	DistributionID      str   `json:"distributionId"`
	Status              str   `json:"status"`
	SurveyLink          str   `json:"surveyLink"`
	ResponseID          str   `json:"responseId"`
	SentAt              qtime `json:"sentAt"`
	OpenedAt            qtime `json:"openedAt"`
	ResponseStartedAt   qtime `json:"responseStartedAt"`
	ResponseCompletedAt qtime `json:"responseCompletedAt"`
}

func (w wireHistory) row(distID string) HistoryRow {
	return HistoryRow{DistributionID: distID, ContactID: string(w.ContactID), Status: string(w.Status),
		SentAt: w.SentAt.t, OpenedAt: w.OpenedAt.t, ResponseID: string(w.ResponseID),
		ResponseStartedAt: w.ResponseStartedAt.t, ResponseCompletedAt: w.ResponseCompletedAt.t, SurveyLink: string(w.SurveyLink)}
}

type wireLink struct {
	ContactID      str   `json:"contactId"`
	Link           str   `json:"link"`
	LinkExpiration qtime `json:"linkExpiration"`
	Status         str   `json:"status"`
	FirstName      str   `json:"firstName"`
	LastName       str   `json:"lastName"`
	Email          str   `json:"email"`
}

func (w wireLink) link(distID string) Link {
	return Link{DistributionID: distID, ContactID: string(w.ContactID), Email: string(w.Email), FirstName: string(w.FirstName),
		LastName: string(w.LastName), Link: string(w.Link), LinkExpiresAt: w.LinkExpiration.t, Status: string(w.Status)}
}

type wireDirectory struct {
	DirectoryID str `json:"directoryId"`
	ID          str `json:"id"`
	Name        str `json:"name"`
}

type wireContact struct {
	ID        str `json:"id"`
	ContactID str `json:"contactId"`
	Email     str `json:"email"`
	FirstName str `json:"firstName"`
	LastName  str `json:"lastName"`
	ExtRef    str `json:"extRef"`
}
