package survey

import (
	"net/http"
	"net/mail"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/fault"
)

// Pages serves the read API for people and brand admins: my active surveys, open surveys,
// survey details, distribution data. Every link in the answers is a deep link into Qualtrics.
type Pages struct {
	Store Store
	Now   func() time.Time
}

// Register adds the read routes to g (support and operator read).
func (p *Pages) Register(g gin.IRoutes) {
	g.GET("/people/:email/surveys", p.person)
	g.GET("/surveys", p.surveys)
	g.GET("/surveys/:surveyId", p.survey)
	g.GET("/distributions/:id", p.distribution)
}

func (p *Pages) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// PersonSurveys is the answer of GET /v1/people/{email}/surveys.
type PersonSurveys struct {
	Email   string      `json:"email"`
	Surveys []Recipient `json:"surveys"`
}

func (p *Pages) person(c *gin.Context) {
	email := strings.TrimSpace(c.Param("email"))
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email {
		api.Fail(c, fault.New(fault.Invalid, "path.email", "invalid_email", "must be an email address"))
		return
	}
	rs, err := p.Store.PersonSurveys(c.Request.Context(), email, p.now())
	if err != nil {
		api.Fail(c, err)
		return
	}
	out := PersonSurveys{Email: email, Surveys: make([]Recipient, 0, len(rs))}
	for _, r := range rs {
		r.Links = RecipientLinks(r)
		out.Surveys = append(out.Surveys, r)
	}
	c.JSON(http.StatusOK, out)
}

// SurveyList is the answer of GET /v1/surveys.
type SurveyList struct {
	Surveys []Survey `json:"surveys"`
}

func (p *Pages) surveys(c *gin.Context) {
	active := true
	switch c.Query("active") {
	case "", "true":
	case "false":
		active = false
	default:
		api.Fail(c, fault.New(fault.Invalid, "query.active", "invalid_boolean", "active must be true or false"))
		return
	}
	ss, err := p.Store.ListSurveys(c.Request.Context(), c.Query("connectionId"), active)
	if err != nil {
		api.Fail(c, err)
		return
	}
	if ss == nil {
		ss = []Survey{}
	}
	c.JSON(http.StatusOK, SurveyList{Surveys: ss})
}

// SurveyDetail is the answer of GET /v1/surveys/{surveyId}.
type SurveyDetail struct {
	Survey
	Distributions []DistributionView `json:"distributions"`
}

func (p *Pages) survey(c *gin.Context) {
	sv, ds, err := p.Store.GetSurvey(c.Request.Context(), c.Param("surveyId"))
	if err != nil {
		api.Fail(c, err)
		return
	}
	if ds == nil {
		ds = []DistributionView{}
	}
	for i := range ds {
		ds[i].Links = SurveyLinks(ds[i].BaseURL, ds[i].BrandID, ds[i].SurveyID)
	}
	c.JSON(http.StatusOK, SurveyDetail{Survey: sv, Distributions: ds})
}

// DistributionDetail is the answer of GET /v1/distributions/{id}.
type DistributionDetail struct {
	DistributionView
	Recipients []Recipient `json:"recipients"`
}

func (p *Pages) distribution(c *gin.Context) {
	status := c.Query("status")
	if status != "" && !slices.Contains(Statuses, status) {
		api.Fail(c, fault.New(fault.Invalid, "query.status", "invalid_status", "status must be one of "+strings.Join(Statuses, ", ")))
		return
	}
	d, rs, err := p.Store.GetDistribution(c.Request.Context(), c.Param("id"))
	if err != nil {
		api.Fail(c, err)
		return
	}
	d.Links = SurveyLinks(d.BaseURL, d.BrandID, d.SurveyID)
	out := DistributionDetail{DistributionView: d, Recipients: []Recipient{}}
	for _, r := range rs {
		if status != "" && r.Status != status {
			continue
		}
		r.Links = RecipientLinks(r)
		out.Recipients = append(out.Recipients, r)
	}
	c.JSON(http.StatusOK, out)
}
