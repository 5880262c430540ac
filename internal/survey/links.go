package survey

import (
	"net/url"
	"strings"
)

// Deep links into Qualtrics (seen in use, not formally documented; see SURVEYS.md). qgate never
// changes anything in Qualtrics: these links are where people do.

// origin is the scheme and host of a connection's base URL ("https://iad1.qualtrics.com").
func origin(baseURL string) string {
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// surveyLink is the anonymous respond link of a survey.
func surveyLink(baseURL, surveyID string) string {
	if o := origin(baseURL); o != "" {
		return o + "/jfe/form/" + url.PathEscape(surveyID)
	}
	return ""
}

// resultsLink is the survey's responses page.
func resultsLink(baseURL, surveyID string) string {
	if o := origin(baseURL); o != "" {
		return o + "/responses/#/surveys/" + url.PathEscape(surveyID)
	}
	return ""
}

// reviewLink is the brand's projects page ("Review Distributions"); without a known brand, the
// data center's.
func reviewLink(baseURL, brandID string) string {
	if brandID != "" && !strings.ContainsAny(brandID, "/:@?#") {
		u, err := url.Parse(baseURL)
		if err == nil && u.Scheme == "https" {
			return "https://" + brandID + ".qualtrics.com/Q/MyProjectsSection"
		}
	}
	if o := origin(baseURL); o != "" {
		return o + "/Q/MyProjectsSection"
	}
	return ""
}

// SurveyLinks returns the links of a survey page.
func SurveyLinks(baseURL, brandID, surveyID string) Links {
	return Links{Survey: surveyLink(baseURL, surveyID), Results: resultsLink(baseURL, surveyID), Review: reviewLink(baseURL, brandID)}
}

// RecipientLinks returns a recipient's links; respond is their personal link, hidden once
// they are done.
func RecipientLinks(r Recipient) Links {
	l := SurveyLinks(r.BaseURL, r.BrandID, r.SurveyID)
	l.Results = ""
	if !Done(r.Status) {
		l.Respond = r.RespondLink
		if l.Respond == "" {
			l.Respond = l.Survey
		}
	}
	return l
}
