package simulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Event subscriptions (POST /API/v3/eventsubscriptions): Qualtrics posts form-encoded events
// to the publicationUrl for the subscribed topics. The brand posts
// surveyengine.completedResponse.{SurveyID} when a recipient finishes (SetRecipientStatus),
// synchronously, after the change is visible to the API.

type subscription struct {
	ID     string
	URL    string
	Topics []string
}

func (s subscription) wants(topic string) bool {
	for _, t := range s.Topics {
		if t == topic || strings.HasSuffix(t, ".*") && strings.HasPrefix(topic, strings.TrimSuffix(t, "*")) {
			return true
		}
	}
	return false
}

// subscribe handles POST eventsubscriptions; b.mu is held.
func (b *Brand) subscribe(w http.ResponseWriter, r *http.Request) {
	var body struct {
		PublicationURL string `json:"publicationUrl"`
		Topics         string `json:"topics"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil || body.PublicationURL == "" || body.Topics == "" {
		writeCoded(w, http.StatusBadRequest, "QVAL_1", "publicationUrl and topics are required")
		return
	}
	if u, err := url.Parse(body.PublicationURL); err != nil || u.Host == "" {
		writeCoded(w, http.StatusBadRequest, "QVAL_1", "publicationUrl must be a URL")
		return
	}
	b.seq++
	sub := subscription{ID: fmt.Sprintf("SUB_sim%08d", b.seq), URL: body.PublicationURL, Topics: strings.Split(body.Topics, ",")}
	b.subs = append(b.subs, sub)
	writeResult(w, map[string]string{"id": sub.ID})
}

// Subscribe registers a publication URL for topics (comma-separated, as Qualtrics takes them)
// from Go and returns the subscription ID.
func (b *Brand) Subscribe(publicationURL, topics string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.seq++
	sub := subscription{ID: fmt.Sprintf("SUB_sim%08d", b.seq), URL: publicationURL, Topics: strings.Split(topics, ",")}
	b.subs = append(b.subs, sub)
	return sub.ID
}

// EventPost is one event the brand posted and the status it got back.
type EventPost struct {
	URL    string
	Topic  string
	Status int
	Err    string
}

// EventPosts returns the events posted so far.
func (b *Brand) EventPosts() []EventPost {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]EventPost(nil), b.posted...)
}

type pendingEvent struct {
	url  string
	form url.Values
}

// completedEvents returns the posts a finished response calls for; b.mu is held.
func (b *Brand) completedEvents(d *brandDistribution, r *BrandRecipient) []pendingEvent {
	topic := "surveyengine.completedResponse." + d.SurveyID
	var out []pendingEvent
	for _, s := range b.subs {
		if !s.wants(topic) {
			continue
		}
		out = append(out, pendingEvent{url: s.URL, form: url.Values{
			"Topic": {topic}, "Status": {"Complete"}, "SurveyID": {d.SurveyID}, "ResponseID": {r.ResponseID},
			"RecipientID": {r.ContactID}, "DistributionID": {d.ID}, "BrandID": {b.ID},
			"CompletedDate": {r.CompletedAt.UTC().Format(time.RFC3339)}, "ResponseEventContext": {"{}"},
		}})
	}
	return out
}

var eventClient = &http.Client{Timeout: 5 * time.Second}

// send posts events (b.mu not held) and records the outcomes.
func (b *Brand) send(evs []pendingEvent) {
	for _, ev := range evs {
		p := EventPost{URL: ev.url, Topic: ev.form.Get("Topic")}
		resp, err := eventClient.PostForm(ev.url, ev.form)
		if err != nil {
			p.Err = err.Error()
		} else {
			p.Status = resp.StatusCode
			resp.Body.Close()
		}
		b.mu.Lock()
		b.posted = append(b.posted, p)
		b.mu.Unlock()
	}
}
