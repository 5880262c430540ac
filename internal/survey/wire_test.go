package survey

import (
	"encoding/json"
	"testing"
	"time"
)

// The responses recorded in SURVEYS.md decode into what the sync needs.
const (
	recordedHistory = `{"contactId":"CID_6RkMIPKLVnNn197","contactLookupId":"MLRP_elBa85GU65DunKC",
 "distributionId":"EMD_RmjB8Gfpjlki6ms","status":"SurveyStarted",
 "surveyLink":"http://brand.az1.qualtrics.com/jfe/form/SV_06PSFx0kpItCz0q?Q_CHL=email&Q_DL=EMD_RmjB8Gfpjlki6ms_06PSFx0kpItCz0q_MLRP_elBa85GU65DunKC",
 "contactFrequencyRuleId":null,"responseId":null,"responseCompletedAt":null,
 "sentAt":"2021-06-01T18:59:23.161Z","openedAt":"2021-06-01T19:03:11.000Z",
 "responseStartedAt":"2021-06-01T19:03:19.000Z","surveySessionId":"FS_3HS5kKiC5bhRMpO"}`
	recordedLink = `{"contactId":"CID_6RkMIPKLVnNn197","transactionId":null,
 "link":"http://brand.az1.qualtrics.com/jfe/form/SV_06PSFx0kpItCz0q?Q_CHL=gl&Q_DL=x",
 "exceededContactFrequency":false,"linkExpiration":"2021-07-31T14:58:00Z","status":"Email not sent",
 "lastName":null,"firstName":null,"externalDataReference":null,"email":"someone@example.com","unsubscribed":false}`
	recordedSurvey = `{"id":"SV_3gbwq8aJgqPwQDP","name":"Beskar Armor","ownerId":"UR_8wfG5qsMxuh0Jrn",
 "organizationId":"conjoint","isActive":true,"creationDate":"2020-02-20T00:35:40Z",
 "lastModifiedDate":"2020-02-20T01:19:11Z","expiration":{"startDate":null,"endDate":null},
 "responseCounts":{"auditable":10,"generated":16,"deleted":0}}`
)

func TestRecordedShapes(t *testing.T) {
	var h wireHistory
	if err := json.Unmarshal([]byte(recordedHistory), &h); err != nil {
		t.Fatal(err)
	}
	row := h.row("EMD_RmjB8Gfpjlki6ms")
	if row.Status != "SurveyStarted" || row.SentAt == nil || !row.SentAt.Equal(time.Date(2021, 6, 1, 18, 59, 23, 161e6, time.UTC)) ||
		row.ResponseCompletedAt != nil || row.ResponseID != "" || row.SurveyLink == "" {
		t.Errorf("history row %+v", row)
	}
	var l wireLink
	if err := json.Unmarshal([]byte(recordedLink), &l); err != nil {
		t.Fatal(err)
	}
	if k := l.link("EMD_1"); k.Email != "someone@example.com" || k.FirstName != "" || k.LinkExpiresAt == nil || k.ContactID != "CID_6RkMIPKLVnNn197" {
		t.Errorf("link %+v", k)
	}
	var s wireSurvey
	if err := json.Unmarshal([]byte(recordedSurvey), &s); err != nil {
		t.Fatal(err)
	}
	if sv := s.survey("svc_1"); sv.LastModified.IsZero() || sv.ExpiresAt != nil || !sv.IsActive || sv.Name != "Beskar Armor" {
		t.Errorf("survey %+v", sv)
	}
	var q qtime
	for _, v := range []string{`null`, `""`, `"0000-00-00 00:00:00"`, `"garbage"`, `12`} {
		q = qtime{}
		if err := json.Unmarshal([]byte(v), &q); err != nil || q.t != nil {
			t.Errorf("qtime %s: %v %v", v, q.t, err)
		}
	}
	if err := json.Unmarshal([]byte(`"2021-07-31 14:58:00"`), &q); err != nil || q.t == nil {
		t.Errorf("metadata-style date: %v", err)
	}
}

// FuzzWire: no API answer makes decoding panic.
func FuzzWire(f *testing.F) {
	for _, s := range []string{recordedHistory, recordedLink, recordedSurvey, `{}`, `{"sentAt":5,"status":null}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var h wireHistory
		if json.Unmarshal(b, &h) == nil {
			_ = h.row("d")
		}
		var l wireLink
		if json.Unmarshal(b, &l) == nil {
			_ = l.link("d")
		}
		var s wireSurvey
		if json.Unmarshal(b, &s) == nil {
			_ = s.survey("c")
		}
		var d wireDistribution
		if json.Unmarshal(b, &d) == nil {
			_ = d.distribution("c", "s")
		}
	})
}
