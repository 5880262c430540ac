package simulator

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// A Brand is a Qualtrics account for survey watch, reached with its own API token: users,
// surveys with survey-level expiry, email distributions with per-recipient history and
// personal links, directories and contacts, seeded relative to "now" so that a test sees a
// link expiring in 20 hours. Its API answers follow the shapes recorded in SURVEYS.md; its
// controls change the data as Qualtrics would (a recipient finishing changes the history and
// the stats, not the survey's lastModified) and inject faults per endpoint.
type Brand struct {
	ID    string
	Token string

	mu          sync.Mutex
	now         func() time.Time
	pageSize    int
	revoked     bool
	throttles   map[string]throttle
	calls       map[string]int
	users       []brandUser
	surveys     []*brandSurvey
	directories []brandDirectory
	seq         int
	subs        []subscription // brand_events.go
	posted      []EventPost
}

type throttle struct {
	n          int
	retryAfter int
}

type brandUser struct {
	ID, Username, Email, FirstName, LastName, UserType, AccountStatus, DivisionID string
}

type brandSurvey struct {
	ID, Name, OwnerID string
	LastModified      time.Time
	CreationDate      time.Time
	IsActive          bool
	ExpiresAt         *time.Time
	Distributions     []*brandDistribution
}

type brandDistribution struct {
	ID, SurveyID, MailingListID string
	SendDate, CreatedDate       time.Time
	LinkExpiresAt               *time.Time
	Recipients                  []*BrandRecipient
}

// BrandRecipient is one recipient of a distribution.
type BrandRecipient struct {
	ContactID   string
	LookupID    string
	Email       string
	FirstName   string
	LastName    string
	Status      string
	SentAt      *time.Time
	OpenedAt    *time.Time
	StartedAt   *time.Time
	CompletedAt *time.Time
	ResponseID  string
}

type brandDirectory struct {
	ID, Name string
	Contacts []brandContact
}

type brandContact struct{ ID, Email, FirstName, LastName, ExtRef string }

// brandSet holds the simulator's brands by token.
type brandSet struct {
	mu    sync.RWMutex
	byTok map[string]*Brand
	byID  map[string]*Brand
}

func (bs *brandSet) forToken(tok string) *Brand {
	bs.mu.RLock()
	defer bs.mu.RUnlock()
	for t, b := range bs.byTok {
		if equal(tok, t) {
			return b
		}
	}
	return nil
}

func (bs *brandSet) byBrandID(id string) *Brand {
	bs.mu.RLock()
	defer bs.mu.RUnlock()
	return bs.byID[id]
}

// Seeded IDs of the survey-watch data, for tests.
const (
	BrandSurveyPulse      = "SV_pulseQ4sim00001" // active, no survey expiry
	BrandDistPulse        = "EMD_pulseQ4sim0001" // sent 4 h ago, links expire in 20 h
	BrandSurveyOnboarding = "SV_onboardsim00002" // active, survey expires in 10 days
	BrandDistOnboarding   = "EMD_onboardsim0002" // sent 1 h ago, links expire in 7 days
	BrandSurveyOld        = "SV_oldfeedback0003" // inactive
	BrandDistOld          = "EMD_oldfeedbac0003" // links expired 3 days ago
)

// AddBrand creates (or returns) the brand reached with token, seeded relative to the
// simulator's clock now.
func (s *Simulator) AddBrand(id, token string) *Brand {
	s.brands.mu.Lock()
	defer s.brands.mu.Unlock()
	if s.brands.byTok == nil {
		s.brands.byTok, s.brands.byID = map[string]*Brand{}, map[string]*Brand{}
	}
	if b, ok := s.brands.byTok[token]; ok {
		return b
	}
	b := &Brand{ID: id, Token: token, now: s.cfg.Now, pageSize: 5, throttles: map[string]throttle{}, calls: map[string]int{}}
	b.seed()
	s.brands.byTok[token] = b
	s.brands.byID[id] = b
	return b
}

// Brand returns the brand with ID id, or nil.
func (s *Simulator) Brand(id string) *Brand { return s.brands.byBrandID(id) }

func tp(t time.Time) *time.Time {
	t = t.UTC().Truncate(time.Second)
	return &t
}

func (b *Brand) seed() {
	now := b.now().UTC().Truncate(time.Second)
	owner := "UR_simbrandadmin01"
	b.users = []brandUser{
		{owner, "admin@" + b.ID, "admin@example.com", "Avery", "Admin", "UT_BRANDADMIN", "active", "DV_sim1"},
		{"UR_simparticipant1", "alice@" + b.ID, "alice@example.com", "Alice", "Archer", "UT_PARTICIPANT", "active", ""},
		{"UR_simparticipant2", "bob@" + b.ID, "bob@example.com", "Bob", "Baker", "UT_PARTICIPANT", "active", ""},
	}
	people := []brandContact{
		{"CID_alice00000001", "alice@example.com", "Alice", "Archer", "E001"},
		{"CID_bob0000000002", "bob@example.com", "Bob", "Baker", "E002"},
		{"CID_carol00000003", "carol@example.com", "Carol", "Chen", "E003"},
		{"CID_dave000000004", "dave@example.com", "Dave", "Diaz", "E004"},
		{"CID_erin000000005", "erin@example.com", "Erin", "Evans", "E005"},
		{"CID_frank00000006", "frank@example.com", "Frank", "Ford", "E006"},
		{"CID_grace00000007", "grace@example.com", "Grace", "Gupta", "E007"},
	}
	b.directories = []brandDirectory{{ID: "POOL_simdirectory1", Name: "Employees", Contacts: people}}
	rcp := func(c brandContact, status string, sent time.Time) *BrandRecipient {
		r := &BrandRecipient{ContactID: c.ID, LookupID: "MLRP_" + strings.TrimPrefix(c.ID, "CID_"), Email: c.Email,
			FirstName: c.FirstName, LastName: c.LastName}
		r.setStatus(status, sent)
		return r
	}
	pulse := &brandSurvey{ID: BrandSurveyPulse, Name: "Quarterly Pulse", OwnerID: owner, CreationDate: now.Add(-30 * 24 * time.Hour),
		LastModified: now.Add(-48 * time.Hour), IsActive: true}
	pulse.Distributions = []*brandDistribution{{ID: BrandDistPulse, SurveyID: pulse.ID, MailingListID: "CG_simpulselist1",
		SendDate: now.Add(-4 * time.Hour), CreatedDate: now.Add(-5 * time.Hour), LinkExpiresAt: tp(now.Add(20 * time.Hour)),
		Recipients: []*BrandRecipient{
			rcp(people[0], "Success", now.Add(-4*time.Hour)),
			rcp(people[1], "SurveyStarted", now.Add(-4*time.Hour)),
			rcp(people[2], "SurveyFinished", now.Add(-4*time.Hour)),
			rcp(people[3], "Pending", now.Add(-4*time.Hour)),
		}}}
	onboard := &brandSurvey{ID: BrandSurveyOnboarding, Name: "Onboarding Check-in", OwnerID: owner, CreationDate: now.Add(-10 * 24 * time.Hour),
		LastModified: now.Add(-72 * time.Hour), IsActive: true, ExpiresAt: tp(now.Add(10 * 24 * time.Hour))}
	onboard.Distributions = []*brandDistribution{{ID: BrandDistOnboarding, SurveyID: onboard.ID, MailingListID: "CG_simonboard001",
		SendDate: now.Add(-time.Hour), CreatedDate: now.Add(-2 * time.Hour), LinkExpiresAt: tp(now.Add(7 * 24 * time.Hour)),
		Recipients: []*BrandRecipient{
			rcp(people[4], "Success", now.Add(-time.Hour)),
			rcp(people[5], "Opened", now.Add(-time.Hour)),
		}}}
	old := &brandSurvey{ID: BrandSurveyOld, Name: "Old Feedback", OwnerID: owner, CreationDate: now.Add(-90 * 24 * time.Hour),
		LastModified: now.Add(-60 * 24 * time.Hour), IsActive: false}
	old.Distributions = []*brandDistribution{{ID: BrandDistOld, SurveyID: old.ID, MailingListID: "CG_simoldlist001",
		SendDate: now.Add(-40 * 24 * time.Hour), CreatedDate: now.Add(-41 * 24 * time.Hour), LinkExpiresAt: tp(now.Add(-3 * 24 * time.Hour)),
		Recipients: []*BrandRecipient{
			rcp(people[0], "SurveyFinished", now.Add(-40*24*time.Hour)),
			rcp(people[6], "Success", now.Add(-40*24*time.Hour)),
		}}}
	b.surveys = []*brandSurvey{pulse, onboard, old}
	// Surveys without distributions, so that the survey list spans pages.
	for i := range 6 {
		b.surveys = append(b.surveys, &brandSurvey{ID: fmt.Sprintf("SV_simfiller%06d", i+1), Name: fmt.Sprintf("Draft %d", i+1),
			OwnerID: owner, CreationDate: now.Add(-time.Duration(20+i) * 24 * time.Hour), LastModified: now.Add(-time.Duration(5+i) * 24 * time.Hour),
			IsActive: i%2 == 0})
	}
}

// setStatus moves a recipient to status at t, filling the times Qualtrics would.
func (r *BrandRecipient) setStatus(status string, t time.Time) {
	r.Status = status
	at := tp(t)
	switch status {
	case "Pending":
		r.SentAt = nil
		return
	}
	if r.SentAt == nil {
		r.SentAt = at
	}
	switch status {
	case "Opened", "SurveyStarted", "SurveyPartiallyFinished", "SurveyFinished":
		if r.OpenedAt == nil {
			r.OpenedAt = at
		}
	}
	switch status {
	case "SurveyStarted", "SurveyPartiallyFinished", "SurveyFinished":
		if r.StartedAt == nil {
			r.StartedAt = at
		}
	}
	if status == "SurveyFinished" {
		r.CompletedAt = at
		r.ResponseID = "R_" + strings.TrimPrefix(r.ContactID, "CID_")
	}
}

func (b *Brand) findDist(id string) *brandDistribution {
	for _, sv := range b.surveys {
		for _, d := range sv.Distributions {
			if d.ID == id {
				return d
			}
		}
	}
	return nil
}

// SetRecipientStatus moves the recipient with email in distribution distID to status (for
// example SurveyFinished) at the brand's now. Like Qualtrics, it leaves the survey's
// lastModified alone. It reports whether the recipient exists.
//
// A recipient finishing is posted to the event subscriptions for
// surveyengine.completedResponse.{SurveyID} before SetRecipientStatus returns.
func (b *Brand) SetRecipientStatus(distID, email, status string) bool {
	b.mu.Lock()
	d := b.findDist(distID)
	var evs []pendingEvent
	found := false
	if d != nil {
		for _, r := range d.Recipients {
			if strings.EqualFold(r.Email, email) {
				r.setStatus(status, b.now())
				found = true
				if status == "SurveyFinished" {
					evs = b.completedEvents(d, r)
				}
				break
			}
		}
	}
	b.mu.Unlock()
	b.send(evs)
	return found
}

// AddRecipient adds a recipient to distribution distID with status (Success: the email was
// just delivered) and returns its contact ID, or "" for an unknown distribution.
func (b *Brand) AddRecipient(distID, email, firstName, lastName, status string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.findDist(distID)
	if d == nil {
		return ""
	}
	b.seq++
	id := fmt.Sprintf("CID_added%08d", b.seq)
	r := &BrandRecipient{ContactID: id, LookupID: fmt.Sprintf("MLRP_added%08d", b.seq), Email: email, FirstName: firstName, LastName: lastName}
	r.setStatus(status, b.now())
	d.Recipients = append(d.Recipients, r)
	return id
}

// TouchSurvey sets a survey's lastModified to now (an edit in the survey builder).
func (b *Brand) TouchSurvey(id, newName string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, sv := range b.surveys {
		if sv.ID == id {
			sv.LastModified = b.now().UTC().Truncate(time.Second)
			if newName != "" {
				sv.Name = newName
			}
			return true
		}
	}
	return false
}

// Revoke makes the brand's token unrecognized (401, DCD_7) until restored.
func (b *Brand) Revoke(revoked bool) {
	b.mu.Lock()
	b.revoked = revoked
	b.mu.Unlock()
}

// Throttle makes the next n calls to endpoint answer 429 with Retry-After retryAfter
// seconds. Endpoints: whoami, users, surveys, survey, distributions, history, links,
// directories, contacts.
func (b *Brand) Throttle(endpoint string, n, retryAfter int) {
	b.mu.Lock()
	b.throttles[endpoint] = throttle{n: n, retryAfter: retryAfter}
	b.mu.Unlock()
}

// RevokeAfter lets n more calls through, then revokes the token (a token revoked midway
// through a sync).
func (b *Brand) RevokeAfter(n int) {
	b.mu.Lock()
	b.throttles["*revoke"] = throttle{n: n}
	b.mu.Unlock()
}

// SetPageSize sets how many elements a list page holds (default 5).
func (b *Brand) SetPageSize(n int) {
	b.mu.Lock()
	b.pageSize = max(n, 1)
	b.mu.Unlock()
}

// Calls returns how many calls each endpoint answered (429s and 401s included).
func (b *Brand) Calls() map[string]int {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make(map[string]int, len(b.calls))
	for k, v := range b.calls {
		out[k] = v
	}
	return out
}

// Recipients returns a copy of a distribution's recipients.
func (b *Brand) Recipients(distID string) []BrandRecipient {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := b.findDist(distID)
	if d == nil {
		return nil
	}
	out := make([]BrandRecipient, len(d.Recipients))
	for i, r := range d.Recipients {
		out[i] = *r
	}
	return out
}

// SurveyIDs lists the brand's survey IDs.
func (b *Brand) SurveyIDs() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, len(b.surveys))
	for i, sv := range b.surveys {
		out[i] = sv.ID
	}
	return slices.Clip(out)
}
