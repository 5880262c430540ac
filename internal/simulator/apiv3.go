package simulator

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// API v3 seed data. Everything is derived from a fixed seed so that tests
// and demos see the same surveys on every run.
const (
	seedSurveyCount = 25
	apiPageSize     = 10
	simDatacenterID = "sim1"
	simBrandID      = "qgate-sim"
	simOwnerID      = "UR_0qgateSimOwner1"
	simOrgID        = "qgate-sim"
)

var seedEpoch = time.Date(2025, 1, 6, 9, 0, 0, 0, time.UTC)

type survey struct {
	ID           string    `json:"id"`
	Name         string    `json:"name"`
	OwnerID      string    `json:"ownerId"`
	LastModified time.Time `json:"lastModified"`
	CreationDate time.Time `json:"creationDate"`
	IsActive     bool      `json:"isActive"`

	responses     int
	expires       bool
	distributions []distribution
}

type distributionStats struct {
	Sent       int `json:"sent"`
	Failed     int `json:"failed"`
	Started    int `json:"started"`
	Bounced    int `json:"bounced"`
	Opened     int `json:"opened"`
	Skipped    int `json:"skipped"`
	Finished   int `json:"finished"`
	Complaints int `json:"complaints"`
	Blocked    int `json:"blocked"`
}

type distribution struct {
	ID                   string            `json:"id"`
	ParentDistributionID *string           `json:"parentDistributionId"`
	OwnerID              string            `json:"ownerId"`
	OrganizationID       string            `json:"organizationId"`
	RequestType          string            `json:"requestType"`
	RequestStatus        string            `json:"requestStatus"`
	SendDate             time.Time         `json:"sendDate"`
	CreatedDate          time.Time         `json:"createdDate"`
	ModifiedDate         time.Time         `json:"modifiedDate"`
	SurveyLink           map[string]any    `json:"surveyLink"`
	Stats                distributionStats `json:"stats"`
}

const idChars = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

func randomID(rng *rand.Rand, prefix string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = idChars[rng.IntN(len(idChars))]
	}
	return prefix + string(b)
}

var surveyTopics = []string{
	"Customer Satisfaction", "Net Promoter Score", "Onboarding Feedback", "Support Ticket CSAT",
	"Product Market Fit", "Churn Exit Survey", "Feature Request Poll", "Website Usability",
}

func seedSurveys() []survey {
	rng := rand.New(rand.NewPCG(2025, 11))
	out := make([]survey, seedSurveyCount)
	for i := range out {
		created := seedEpoch.Add(time.Duration(i) * 72 * time.Hour)
		sv := survey{
			ID:           randomID(rng, "SV_", 15),
			Name:         fmt.Sprintf("%s %02d", surveyTopics[i%len(surveyTopics)], i+1),
			OwnerID:      simOwnerID,
			CreationDate: created,
			LastModified: created.Add(time.Duration(rng.IntN(240)) * time.Hour),
			IsActive:     i%4 != 3,
			responses:    rng.IntN(5000),
			expires:      i%3 == 0,
		}
		for d := range i % 4 {
			sent := 100 + rng.IntN(900)
			failed := rng.IntN(sent / 20)
			opened := rng.IntN(sent - failed)
			started := rng.IntN(opened + 1)
			finished := rng.IntN(started + 1)
			send := created.Add(time.Duration(d+1) * 24 * time.Hour)
			sv.distributions = append(sv.distributions, distribution{
				ID:             randomID(rng, "EMD_", 15),
				OwnerID:        simOwnerID,
				OrganizationID: simOrgID,
				RequestType:    "Invite",
				RequestStatus:  "Done",
				SendDate:       send,
				CreatedDate:    send.Add(-time.Hour),
				ModifiedDate:   send,
				SurveyLink:     map[string]any{"surveyId": sv.ID, "linkType": "Individual"},
				Stats: distributionStats{
					Sent: sent, Failed: failed, Started: started, Bounced: failed / 2,
					Opened: opened, Skipped: rng.IntN(5), Finished: finished,
					Complaints: rng.IntN(3), Blocked: rng.IntN(3),
				},
			})
		}
		out[i] = sv
	}
	return out
}

// whoami is the body of GET /API/v3/whoami.
type whoami struct {
	UserName     string `json:"userName"`
	UserID       string `json:"userId"`
	BrandID      string `json:"brandId"`
	DatacenterID string `json:"datacenterId"`
	AccountType  string `json:"accountType"`
	FirstName    string `json:"firstName"`
	LastName     string `json:"lastName"`
	Email        string `json:"email"`
}

// apiUser returns the user an API token belongs to: the username of the
// first workflow (by ID) with that token, or "api-user" for a configured
// API token.
func (s *Simulator) apiUser(token string) (string, bool) {
	if token == "" {
		return "", false
	}
	for _, wf := range s.Workflows() {
		if equal(token, wf.Token) {
			return wf.Username, true
		}
	}
	for _, t := range s.cfg.APITokens {
		if equal(token, t) {
			return "api-user", true
		}
	}
	return "", false
}

// handleAPI serves the API v3 subset under /API/v3/.
func (s *Simulator) handleAPI(w http.ResponseWriter, r *http.Request) {
	if b := s.brands.forToken(r.Header.Get("X-API-TOKEN")); b != nil {
		b.serve(w, r) // a survey-watch brand (brand.go)
		return
	}
	user, ok := s.apiUser(r.Header.Get("X-API-TOKEN"))
	if !ok {
		writeError(w, http.StatusUnauthorized, "Invalid API token: send a valid X-API-TOKEN header")
		return
	}
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed")
		return
	}
	path := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/API/v3/"), "/")
	switch {
	case path == "whoami":
		writeResult(w, s.whoami(user))
	case path == "surveys":
		s.listSurveys(w, r)
	case strings.HasPrefix(path, "surveys/") && !strings.Contains(path[len("surveys/"):], "/"):
		s.getSurvey(w, path[len("surveys/"):])
	case path == "distributions":
		s.listDistributions(w, r)
	default:
		writeError(w, http.StatusNotFound, "no such API endpoint: "+r.URL.Path)
	}
}

func (s *Simulator) whoami(user string) whoami {
	first, last, _ := strings.Cut(user, ".")
	return whoami{
		UserName:     user,
		UserID:       "UR_" + fmt.Sprintf("%015x", hashString(user))[:15],
		BrandID:      simBrandID,
		DatacenterID: simDatacenterID,
		AccountType:  "UT_BRANDADMIN",
		FirstName:    first,
		LastName:     last,
		Email:        user + "@example.com",
	}
}

func hashString(v string) uint64 {
	h := uint64(14695981039346656037) // FNV-1a
	for i := range len(v) {
		h ^= uint64(v[i])
		h *= 1099511628211
	}
	return h
}

// page is a list result: elements plus the absolute URL of the next page,
// null on the last.
type page struct {
	Elements any     `json:"elements"`
	NextPage *string `json:"nextPage"`
}

// paginate returns the [offset, end) bounds for total items and the
// nextPage URL, or an error message for a bad offset.
func paginate(r *http.Request, total int) (start, end int, next *string, errMsg string) {
	if v := r.URL.Query().Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, nil, "offset must be a non-negative integer"
		}
		start = min(n, total)
	}
	end = min(start+apiPageSize, total)
	if end < total {
		u := absoluteURL(r)
		q := u.Query()
		q.Set("offset", strconv.Itoa(end))
		u.RawQuery = q.Encode()
		s := u.String()
		next = &s
	}
	return start, end, next, ""
}

func absoluteURL(r *http.Request) *url.URL {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return &url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawQuery: r.URL.RawQuery}
}

func (s *Simulator) listSurveys(w http.ResponseWriter, r *http.Request) {
	start, end, next, msg := paginate(r, len(s.surveys))
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	elems := make([]survey, 0, end-start)
	elems = append(elems, s.surveys[start:end]...)
	writeResult(w, page{Elements: elems, NextPage: next})
}

func (s *Simulator) findSurvey(id string) *survey {
	for i := range s.surveys {
		if s.surveys[i].ID == id {
			return &s.surveys[i]
		}
	}
	return nil
}

func (s *Simulator) getSurvey(w http.ResponseWriter, id string) {
	sv := s.findSurvey(id)
	if sv == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("survey %q not found", id))
		return
	}
	expiration := map[string]any{"startDate": nil, "endDate": nil}
	if sv.expires {
		expiration["startDate"] = sv.CreationDate
		expiration["endDate"] = sv.CreationDate.AddDate(0, 6, 0)
	}
	writeResult(w, map[string]any{
		"id":             sv.ID,
		"name":           sv.Name,
		"ownerId":        sv.OwnerID,
		"organizationId": simOrgID,
		"isActive":       sv.IsActive,
		"creationDate":   sv.CreationDate,
		"lastModified":   sv.LastModified,
		"expiration":     expiration,
		"responseCounts": map[string]int{"auditable": sv.responses, "generated": 0, "deleted": sv.responses / 50},
		"link":           "https://" + simDatacenterID + ".qualtrics.com/jfe/form/" + sv.ID,
	})
}

func (s *Simulator) listDistributions(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("surveyId")
	if id == "" {
		writeError(w, http.StatusBadRequest, "surveyId is required")
		return
	}
	sv := s.findSurvey(id)
	if sv == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("survey %q not found", id))
		return
	}
	start, end, next, msg := paginate(r, len(sv.distributions))
	if msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	elems := make([]distribution, 0, end-start)
	elems = append(elems, sv.distributions[start:end]...)
	writeResult(w, page{Elements: elems, NextPage: next})
}
