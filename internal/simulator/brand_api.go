package simulator

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// serve answers an API v3 call made with the brand's token.
func (b *Brand) serve(w http.ResponseWriter, r *http.Request) {
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/API/v3/"), "/")
	parts := strings.Split(path, "/")
	endpoint := ""
	switch {
	case path == "whoami", path == "users", path == "surveys", path == "distributions", path == "directories":
		endpoint = path
	case len(parts) == 2 && parts[0] == "surveys":
		endpoint = "survey"
	case len(parts) == 3 && parts[0] == "distributions" && (parts[2] == "history" || parts[2] == "links"):
		endpoint = parts[2]
	case len(parts) == 3 && parts[0] == "directories" && parts[2] == "contacts":
		endpoint = "contacts"
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls[endpoint]++
	if rv, ok := b.throttles["*revoke"]; ok {
		if rv.n <= 0 {
			b.revoked = true
			delete(b.throttles, "*revoke")
		} else {
			rv.n--
			b.throttles["*revoke"] = rv
		}
	}
	if b.revoked {
		writeCoded(w, http.StatusUnauthorized, "DCD_7", "Unrecognized X-API-TOKEN.")
		return
	}
	if th, ok := b.throttles[endpoint]; ok && th.n > 0 {
		th.n--
		b.throttles[endpoint] = th
		if th.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(th.retryAfter))
		}
		writeCoded(w, http.StatusTooManyRequests, "RL_1", "Too many requests for this endpoint.")
		return
	}
	if path == "eventsubscriptions" && r.Method == http.MethodPost {
		b.subscribe(w, r) // brand_events.go
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed")
		return
	}
	q := r.URL.Query()
	switch endpoint {
	case "whoami":
		writeResult(w, map[string]any{"userName": "admin@" + b.ID, "userId": b.users[0].ID, "brandId": b.ID,
			"datacenterId": simDatacenterID, "accountType": "UT_BRANDADMIN", "firstName": b.users[0].FirstName,
			"lastName": b.users[0].LastName, "email": b.users[0].Email})
	case "users":
		out := make([]any, 0, len(b.users))
		for _, u := range b.users {
			out = append(out, map[string]any{"id": u.ID, "divisionId": nullable(u.DivisionID), "username": u.Username,
				"firstName": u.FirstName, "lastName": u.LastName, "userType": u.UserType, "email": u.Email, "accountStatus": u.AccountStatus})
		}
		b.page(w, r, out)
	case "surveys":
		var since *time.Time
		if v := q.Get("lastModified"); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				writeCoded(w, http.StatusBadRequest, "QVAL_1", "lastModified must be an ISO 8601 instant")
				return
			}
			since = &t
		}
		out := []any{}
		for _, sv := range b.surveys {
			if since != nil && !sv.LastModified.After(*since) {
				continue
			}
			out = append(out, map[string]any{"id": sv.ID, "name": sv.Name, "ownerId": sv.OwnerID,
				"lastModified": sv.LastModified.Format(time.RFC3339), "creationDate": sv.CreationDate.Format(time.RFC3339), "isActive": sv.IsActive})
		}
		b.page(w, r, out)
	case "survey":
		sv := b.findSurvey(parts[1])
		if sv == nil {
			writeCoded(w, http.StatusNotFound, "GEN_1.4", "survey not found")
			return
		}
		exp := map[string]any{"startDate": nil, "endDate": nil}
		if sv.ExpiresAt != nil {
			exp["startDate"] = sv.CreationDate.Format(time.RFC3339)
			exp["endDate"] = sv.ExpiresAt.Format(time.RFC3339)
		}
		writeResult(w, map[string]any{"id": sv.ID, "name": sv.Name, "ownerId": sv.OwnerID, "organizationId": simOrgID,
			"isActive": sv.IsActive, "creationDate": sv.CreationDate.Format(time.RFC3339),
			"lastModifiedDate": sv.LastModified.Format(time.RFC3339), "expiration": exp,
			"responseCounts": map[string]int{"auditable": b.finished(sv), "generated": 0, "deleted": 0}})
	case "distributions":
		sv := b.findSurvey(q.Get("surveyId"))
		if sv == nil {
			writeCoded(w, http.StatusBadRequest, "QVAL_1", "surveyId is required and must name a survey")
			return
		}
		out := []any{}
		for _, d := range sv.Distributions {
			out = append(out, b.distributionJSON(d))
		}
		b.page(w, r, out)
	case "history":
		d := b.findDist(parts[1])
		if d == nil {
			writeCoded(w, http.StatusNotFound, "GEN_1.4", "distribution not found")
			return
		}
		out := []any{}
		for _, rc := range d.Recipients {
			out = append(out, map[string]any{"contactId": rc.ContactID, "contactLookupId": rc.LookupID, "distributionId": d.ID,
				"status": rc.Status, "surveyLink": b.personalLink(d, rc, "email"), "contactFrequencyRuleId": nil,
				"responseId": nullable(rc.ResponseID), "responseCompletedAt": stampOrNil(rc.CompletedAt, true),
				"sentAt": stampOrNil(rc.SentAt, true), "openedAt": stampOrNil(rc.OpenedAt, true),
				"responseStartedAt": stampOrNil(rc.StartedAt, true), "surveySessionId": nil})
		}
		b.page(w, r, out)
	case "links":
		d := b.findDist(parts[1])
		if d == nil || q.Get("surveyId") != d.SurveyID {
			writeCoded(w, http.StatusBadRequest, "QVAL_1", "surveyId must be the distribution's survey")
			return
		}
		out := []any{}
		for _, rc := range d.Recipients {
			status := "Email not sent"
			if rc.SentAt != nil {
				status = "Email sent"
			}
			out = append(out, map[string]any{"contactId": rc.ContactID, "transactionId": nil, "link": b.personalLink(d, rc, "gl"),
				"exceededContactFrequency": false, "linkExpiration": stampOrNil(d.LinkExpiresAt, false), "status": status,
				"lastName": nullable(rc.LastName), "firstName": nullable(rc.FirstName), "externalDataReference": nil,
				"email": rc.Email, "unsubscribed": false})
		}
		b.page(w, r, out)
	case "directories":
		out := []any{}
		for _, d := range b.directories {
			out = append(out, map[string]any{"directoryId": d.ID, "name": d.Name, "contactCount": len(d.Contacts), "isDefault": true, "deduplicationCriteria": map[string]bool{"email": true}})
		}
		b.page(w, r, out)
	case "contacts":
		var dir *brandDirectory
		for i := range b.directories {
			if b.directories[i].ID == parts[1] {
				dir = &b.directories[i]
			}
		}
		if dir == nil {
			writeCoded(w, http.StatusNotFound, "GEN_1.4", "directory not found")
			return
		}
		out := []any{}
		for _, c := range dir.Contacts {
			out = append(out, map[string]any{"id": c.ID, "firstName": c.FirstName, "lastName": c.LastName, "email": c.Email,
				"phone": nil, "extRef": c.ExtRef, "language": "EN", "unsubscribed": false})
		}
		b.page(w, r, out)
	default:
		writeCoded(w, http.StatusNotFound, "GEN_1.4", "no such API endpoint: "+r.URL.Path)
	}
}

func (b *Brand) findSurvey(id string) *brandSurvey {
	for _, sv := range b.surveys {
		if sv.ID == id {
			return sv
		}
	}
	return nil
}

func (b *Brand) finished(sv *brandSurvey) int {
	n := 0
	for _, d := range sv.Distributions {
		for _, r := range d.Recipients {
			if r.Status == "SurveyFinished" {
				n++
			}
		}
	}
	return n
}

// personalLink is a recipient's link; channel "email" in history, "gl" in links.
func (b *Brand) personalLink(d *brandDistribution, r *BrandRecipient, channel string) string {
	sv := strings.TrimPrefix(d.SurveyID, "SV_")
	return "https://" + b.ID + "." + simDatacenterID + ".qualtrics.com/jfe/form/" + d.SurveyID + "?Q_CHL=" + channel +
		"&Q_DL=" + strings.TrimPrefix(d.ID, "EMD_") + "_" + sv + "_" + r.LookupID
}

func (b *Brand) distributionJSON(d *brandDistribution) map[string]any {
	var st distributionStats
	for _, r := range d.Recipients {
		switch r.Status {
		case "Pending":
			continue
		case "Error", "Failure":
			st.Failed++
		case "SoftBounce", "HardBounce":
			st.Bounced++
		case "Complaint":
			st.Complaints++
		case "Blocked":
			st.Blocked++
		case "Skipped":
			st.Skipped++
		}
		st.Sent++
		switch r.Status {
		case "Opened":
			st.Opened++
		case "SurveyStarted", "SurveyPartiallyFinished":
			st.Opened++
			st.Started++
		case "SurveyFinished":
			st.Opened++
			st.Started++
			st.Finished++
		}
	}
	return map[string]any{"id": d.ID, "parentDistributionId": nil, "ownerId": b.users[0].ID, "organizationId": simOrgID,
		"requestStatus": "Done", "requestType": "Invite", "sendDate": d.SendDate.Format(time.RFC3339),
		"createdDate": d.CreatedDate.Format(time.RFC3339), "modifiedDate": d.SendDate.Format(time.RFC3339),
		"headers":      map[string]any{"fromEmail": "noreply@qualtrics-survey.com", "replyToEmail": nil, "fromName": "Surveys"},
		"recipients":   map[string]any{"mailingListId": d.MailingListID, "contactId": nil, "libraryId": "UR_simbrandadmin01", "sampleId": nil},
		"message":      map[string]any{"libraryId": "UR_simbrandadmin01", "messageId": "MS_siminvite001", "messageText": nil},
		"surveyLink":   map[string]any{"surveyId": d.SurveyID, "expirationDate": stampOrNil(d.LinkExpiresAt, false), "linkType": "Individual"},
		"embeddedData": nil, "stats": st}
}

// page writes one page of elems: skipToken is the offset, nextPage the absolute URL of the
// next page or null.
func (b *Brand) page(w http.ResponseWriter, r *http.Request, elems []any) {
	start := 0
	if v := r.URL.Query().Get("skipToken"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeCoded(w, http.StatusBadRequest, "QVAL_1", "invalid skipToken")
			return
		}
		start = min(n, len(elems))
	}
	end := min(start+b.pageSize, len(elems))
	var next *string
	if end < len(elems) {
		u := absoluteURL(r)
		q := u.Query()
		q.Set("skipToken", strconv.Itoa(end))
		u.RawQuery = q.Encode()
		s := u.String()
		next = &s
	}
	writeResult(w, page{Elements: elems[start:end], NextPage: next})
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// stampOrNil renders a time as Qualtrics does: history times with milliseconds, others
// without; nil as null.
func stampOrNil(t *time.Time, millis bool) any {
	if t == nil {
		return nil
	}
	if millis {
		return t.UTC().Format("2006-01-02T15:04:05.000Z")
	}
	return t.UTC().Format(time.RFC3339)
}

// writeCoded writes the error envelope with a given errorCode.
func writeCoded(w http.ResponseWriter, status int, code, msg string) {
	body, _ := json.Marshal(envelope{Meta: meta{HTTPStatus: httpStatusText(status), RequestID: newRequestID(),
		Error: &errorBody{ErrorMessage: msg, ErrorCode: code}}})
	writeJSON(w, status, body)
}
