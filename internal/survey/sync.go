package survey

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/google/uuid"

	"github.com/qgate/qgate/internal/notify"
)

// Opener decrypts a sealed token (destination.Box implements it).
type Opener interface {
	Open(id string, sealed []byte) (string, error)
}

// Publisher records notifications for delivery; publishing an ID again changes nothing.
// It returns how many were new.
type Publisher interface {
	Publish(ctx context.Context, msgs []notify.Message) (int, error)
}

// CursorOverlap is how far an incremental pass reaches back before the previous pass's start.
const CursorOverlap = 5 * time.Minute

// Syncer runs one sync of a connection: it fetches over API v3 into a Snapshot, applies it
// with the run's record in one store transaction (a failed sync changes no synced data and
// records its error), then evaluates the notification rules on the stored state.
type Syncer struct {
	Store     Store
	Box       Opener
	Client    *Client
	Publisher Publisher // nil: no notifications
	Budget    Budget
	Node      string
	Now       func() time.Time
}

func (s *Syncer) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC().Truncate(time.Millisecond)
	}
	return time.Now().UTC().Truncate(time.Millisecond)
}

// Sync syncs c in mode (ModeFull or ModeIncremental) and returns the finished run. The
// error is the sync's failure, also recorded in the run.
func (s *Syncer) Sync(ctx context.Context, c Connection, mode string) (SyncRun, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return SyncRun{}, err
	}
	run := SyncRun{ID: "syn_" + id.String(), ConnectionID: c.ID, Mode: mode, Node: s.Node, StartedAt: s.now(), Outcome: OutcomeRunning}
	if err := s.Store.StartSurveySync(ctx, run); err != nil {
		return run, err
	}
	snap, brand, requests, ferr := s.fetch(ctx, c, mode, run.StartedAt)
	run.Requests = requests
	end := s.now()
	run.EndedAt = &end
	if ferr != nil {
		run.Outcome, run.Error = OutcomeFailed, ferr.Error()
		if err := s.Store.FinishSurveySync(context.WithoutCancel(ctx), run, nil, ScheduleState{}); err != nil {
			return run, errors.Join(ferr, err)
		}
		return run, ferr
	}
	run.Outcome = OutcomeSucceeded
	run.Counts = snap.counts()
	next := ScheduleState{LastIncrementalAt: &run.StartedAt, SurveysSince: &run.StartedAt, BrandID: brand}
	if mode == ModeFull {
		next.LastFullAt = &run.StartedAt
		next.ClearRequestBefore = &run.StartedAt
	}
	if s.Publisher != nil {
		c.BrandID = brand
		n, err := s.notify(ctx, c, snap, end)
		run.Counts.Notifications = n
		if err != nil {
			// The data is good: keep it and say why notifications are late (the next sync
			// evaluates the rules again; IDs are stable, so nothing is sent twice).
			run.Error = "notifications not recorded: " + err.Error()
		}
	}
	if err := s.Store.FinishSurveySync(context.WithoutCancel(ctx), run, snap, next); err != nil {
		return run, err
	}
	return run, nil
}

// notify applies the rules to the stored state merged with snap. The store holds the state
// before this sync until FinishSurveySync, so the rules run on the snapshot's recipients for
// what it fetched and on the store for the rest.
func (s *Syncer) notify(ctx context.Context, c Connection, snap *Snapshot, now time.Time) (int, error) {
	recips, dists, err := s.state(ctx, c, snap, now)
	if err != nil {
		return 0, err
	}
	notices := Rules(c, recips, dists, now)
	msgs := make([]notify.Message, 0, len(notices))
	for _, n := range notices {
		m, err := n.message()
		if err != nil {
			return 0, err
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		return 0, nil
	}
	return s.Publisher.Publish(ctx, msgs)
}

// state returns the recipients and distributions the rules look at: those in snap, plus the
// stored ones of distributions snap did not refresh.
func (s *Syncer) state(ctx context.Context, c Connection, snap *Snapshot, now time.Time) ([]Recipient, []DistributionView, error) {
	fresh := map[string]bool{}
	var recips []Recipient
	var dists []DistributionView
	for _, sd := range snap.Surveys {
		for _, dd := range sd.Distributions {
			dv := DistributionView{Distribution: dd.Distribution, SurveyName: sd.Survey.Name, SurveyExpiresAt: sd.Survey.ExpiresAt}
			dists = append(dists, dv)
			if !dd.Detailed {
				continue
			}
			fresh[dd.Distribution.ID] = true
			recips = append(recips, joinRecipients(c.ID, sd.Survey, dd)...)
		}
	}
	if !snap.Full {
		stored, err := s.Store.SurveyRecipients(ctx, c.ID, now)
		if err != nil {
			return nil, nil, err
		}
		for _, r := range stored {
			if !fresh[r.DistributionID] {
				recips = append(recips, r)
			}
		}
	}
	return recips, dists, nil
}

// joinRecipients joins a distribution's history with its links on contactId.
func joinRecipients(connID string, sv Survey, dd DistributionData) []Recipient {
	links := map[string]Link{}
	for _, l := range dd.Links {
		links[l.ContactID] = l
	}
	out := make([]Recipient, 0, len(dd.History))
	for _, h := range dd.History {
		l := links[h.ContactID]
		exp := l.LinkExpiresAt
		if exp == nil {
			exp = dd.Distribution.LinkExpiresAt
		}
		respond := l.Link
		if respond == "" {
			respond = h.SurveyLink
		}
		out = append(out, Recipient{ConnectionID: connID, SurveyID: sv.ID, SurveyName: sv.Name, DistributionID: dd.Distribution.ID,
			ContactID: h.ContactID, Email: l.Email, FirstName: l.FirstName, LastName: l.LastName, Status: h.Status,
			SentAt: h.SentAt, ResponseCompletedAt: h.ResponseCompletedAt, DistributionSentAt: dd.Distribution.SendDate,
			LinkExpiresAt: exp, SurveyExpiresAt: sv.ExpiresAt, ExpiresAt: EarliestOf(exp, sv.ExpiresAt), RespondLink: respond})
	}
	return out
}

func (snap *Snapshot) counts() Counts {
	c := Counts{Users: len(snap.Users), Surveys: len(snap.Surveys), Directories: len(snap.Directories), Contacts: len(snap.Contacts)}
	for _, sd := range snap.Surveys {
		c.Distributions += len(sd.Distributions)
		for _, dd := range sd.Distributions {
			c.History += len(dd.History)
			c.Links += len(dd.Links)
		}
	}
	return c
}

// fetch reads what mode calls for. Full: users, every survey with its details and
// distributions, every distribution's history and links, directories and contacts.
// Incremental: surveys modified since the cursor, plus the surveys of distributions whose
// links have not expired (recipient changes do not touch a survey's lastModified), each
// with distributions, and history and links of the live ones.
func (s *Syncer) fetch(ctx context.Context, c Connection, mode string, started time.Time) (*Snapshot, string, int, error) {
	token, err := s.Box.Open(c.ID, c.Sealed)
	if err != nil {
		return nil, "", 0, fmt.Errorf("open the connection's token: %w", err)
	}
	sess, err := s.Client.Open(c.BaseURL, token, s.Budget)
	if err != nil {
		return nil, "", 0, err
	}
	snap, brand, err := s.fetchWith(ctx, sess, c, mode, started)
	return snap, brand, sess.Requests(), err
}

func (s *Syncer) fetchWith(ctx context.Context, sess *Session, c Connection, mode string, started time.Time) (*Snapshot, string, error) {
	who, err := sess.WhoAmI(ctx)
	if err != nil {
		return nil, "", err
	}
	snap := &Snapshot{Full: mode == ModeFull}
	var surveys []wireSurvey
	live := map[string]bool{} // distribution IDs whose history to fetch on incremental
	if snap.Full {
		users, err := List[wireUser](ctx, sess, "users", nil)
		if err != nil {
			return nil, "", err
		}
		for _, u := range users {
			snap.Users = append(snap.Users, u.user())
		}
		if surveys, err = List[wireSurvey](ctx, sess, "surveys", nil); err != nil {
			return nil, "", err
		}
	} else {
		q := url.Values{}
		if c.SurveysSince != nil {
			// lastModified has second precision and the two clocks differ: overlap the
			// previous pass by CursorOverlap (a survey fetched twice is upserted twice).
			q.Set("lastModified", c.SurveysSince.Add(-CursorOverlap).UTC().Format(time.RFC3339))
		}
		if surveys, err = List[wireSurvey](ctx, sess, "surveys", q); err != nil {
			return nil, "", err
		}
		changed := map[string]bool{}
		for _, sv := range surveys {
			changed[string(sv.ID)] = true
		}
		ds, err := s.Store.LiveDistributions(ctx, c.ID, started)
		if err != nil {
			return nil, "", err
		}
		for _, d := range ds {
			live[d.ID] = true
			if !changed[d.SurveyID] {
				changed[d.SurveyID] = true
				var one wireSurvey
				if err := sess.Get(ctx, "surveys/"+url.PathEscape(d.SurveyID), nil, &one); err != nil {
					var ae *APIError
					if errors.As(err, &ae) && ae.Status == 404 {
						continue // deleted in Qualtrics; the next full sync removes it
					}
					return nil, "", err
				}
				one.ID = str(d.SurveyID)
				surveys = append(surveys, one)
			}
		}
	}
	for _, ws := range surveys {
		if ws.Expiration == nil { // a list element: the survey-level expiry is in the details
			id := ws.ID
			if err := sess.Get(ctx, "surveys/"+url.PathEscape(string(id)), nil, &ws); err != nil {
				return nil, "", err
			}
			ws.ID = id
			if ws.Expiration == nil {
				ws.Expiration = &wireExpiration{}
			}
		}
		sv := ws.survey(c.ID)
		sd := SurveyData{Survey: sv}
		wds, err := List[wireDistribution](ctx, sess, "distributions", url.Values{"surveyId": {sv.ID}})
		if err != nil {
			return nil, "", err
		}
		for _, wd := range wds {
			dd := DistributionData{Distribution: wd.distribution(c.ID, sv.ID)}
			exp := dd.Distribution.LinkExpiresAt
			dd.Detailed = snap.Full || live[dd.Distribution.ID] || exp == nil || exp.After(started)
			if dd.Detailed {
				p := "distributions/" + url.PathEscape(dd.Distribution.ID)
				hist, err := List[wireHistory](ctx, sess, p+"/history", nil)
				if err != nil {
					return nil, "", err
				}
				for _, h := range hist {
					dd.History = append(dd.History, h.row(dd.Distribution.ID))
				}
				links, err := List[wireLink](ctx, sess, p+"/links", url.Values{"surveyId": {sv.ID}})
				if err != nil {
					return nil, "", err
				}
				for _, l := range links {
					dd.Links = append(dd.Links, l.link(dd.Distribution.ID))
				}
			}
			sd.Distributions = append(sd.Distributions, dd)
		}
		snap.Surveys = append(snap.Surveys, sd)
	}
	if snap.Full {
		dirs, err := List[wireDirectory](ctx, sess, "directories", nil)
		if err != nil {
			return nil, "", err
		}
		for _, d := range dirs {
			id := string(d.DirectoryID)
			if id == "" {
				id = string(d.ID)
			}
			snap.Directories = append(snap.Directories, Directory{ID: id, Name: string(d.Name)})
			contacts, err := List[wireContact](ctx, sess, "directories/"+url.PathEscape(id)+"/contacts", nil)
			if err != nil {
				return nil, "", err
			}
			for _, ct := range contacts {
				cid := string(ct.ID)
				if cid == "" {
					cid = string(ct.ContactID)
				}
				snap.Contacts = append(snap.Contacts, Contact{DirectoryID: id, ID: cid, Email: string(ct.Email),
					FirstName: string(ct.FirstName), LastName: string(ct.LastName), ExtRef: string(ct.ExtRef)})
			}
		}
	}
	return snap, who.BrandID, nil
}
