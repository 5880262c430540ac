// Command server starts a qgate node (embedded broker, SQLite in a temporary directory) and the
// Qualtrics simulator in one process for the support page's browser tests, seeds it through
// qgate's own API with destinations and delivered, retried, excluded, dead-lettered and
// circuit-blocked deliveries and a survey connection to a simulated Qualtrics account, waits
// until the seeded updates have settled and the connection has synced, and prints one JSON
// line on stdout: the node's URL, its keys and the seeded IDs. It runs until SIGINT, SIGTERM or
// the end of stdin (so that the test runner's exit stops it).
//
//	go run ./ui-tests/server [-history]
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/app"
	"github.com/qgate/qgate/internal/config"
	"github.com/qgate/qgate/internal/simulator"
)

const adminKey = "ui-test-admin-key-0123456789abcdef"

// Seed sizes: Dave's updates fan out to three destinations each, so his search spans two pages
// of 50.
const daveUpdates = 20

// Seeded is what the tests are told.
type Seeded struct {
	URL          string            `json:"url"`
	SupportKey   string            `json:"supportKey"`
	OperatorKey  string            `json:"operatorKey"`
	Email        string            `json:"email"`
	ExcludedOnly string            `json:"excludedOnly"` // an email whose only delivery is excluded
	Destinations map[string]string `json:"destinations"` // name → ID
	FirstUpdate  string            `json:"firstUpdate"`  // Dave's first update (one retry, then delivered)
	DaveUpdates  []string          `json:"daveUpdates"`  // every one of Dave's updates, oldest first
	Deliveries   int               `json:"daveDeliveries"`
	DeadLetters  int               `json:"deadLetters"`
	Survey       SurveySeed        `json:"survey"`
}

// SurveySeed is the survey-watch part of the seed: a connection to a simulated Qualtrics
// account (internal/simulator brand.go), synced once.
type SurveySeed struct {
	ConnectionID   string `json:"connectionId"`
	BrandID        string `json:"brandId"`
	Recipient      string `json:"recipient"` // has started the pulse survey, not finished it
	Finished       string `json:"finished"`  // has finished every survey sent to them
	SurveyID       string `json:"surveyId"`
	SurveyName     string `json:"surveyName"`
	DistributionID string `json:"distributionId"`
	InactiveName   string `json:"inactiveName"`
}

func main() { os.Exit(run()) }

func run() int {
	history := flag.Bool("history", false, "also write an hour of past deliveries for \"web nps\" into the store (for the documentation's screenshots)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	s, shutdown, err := start(ctx, *history)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ui test server:", err)
		return 1
	}
	defer shutdown()
	if err := json.NewEncoder(os.Stdout).Encode(s); err != nil {
		return 1
	}
	go func() {
		_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
		stop()
	}()
	<-ctx.Done()
	return 0
}

func start(ctx context.Context, history bool) (Seeded, func(), error) {
	sim, srv, err := simulator.Start(simulator.Config{})
	if err != nil {
		return Seeded{}, nil, err
	}
	dir, err := os.MkdirTemp("", "qgate-ui-")
	if err != nil {
		return Seeded{}, nil, err
	}
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = dir
	cfg.AdminKey = adminKey
	cfg.Partitions = 2
	cfg.AllowPrivateNetworks = true
	cfg.RetryBaseDelay = 20 * time.Millisecond
	cfg.RetryMaxDelay = 200 * time.Millisecond
	cfg.BreakerTimeout = 2 * time.Second
	cfg.DeliveryTimeout = time.Second
	cfg.RegistryRefresh = 100 * time.Millisecond
	if err := cfg.Validate(); err != nil {
		return Seeded{}, nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	a, err := app.New(sctx, cfg, zap.NewNop())
	if err != nil {
		return Seeded{}, nil, err
	}
	addr, err := a.Start()
	if err != nil {
		return Seeded{}, nil, err
	}
	shutdown := func() {
		c, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = a.Shutdown(c)
		srv.Close()
		os.RemoveAll(dir)
	}
	s, err := seed(ctx, "http://"+addr, sim, srv.URL, history)
	if err == nil && history {
		err = writeHistory(ctx, dir, s.Destinations["web nps"], time.Now())
	}
	if err != nil {
		shutdown()
		return Seeded{}, nil, err
	}
	return s, shutdown, nil
}

type client struct{ base string }

func (c client) do(method, path, key string, body any, want int) ([]byte, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, r)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	out, err := io.ReadAll(res.Body)
	if err == nil && res.StatusCode != want {
		err = fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, out)
	}
	return out, err
}

func (c client) key(role string) (string, error) {
	b, err := c.do("POST", "/v1/keys", adminKey, map[string]string{"name": "ui " + role, "role": role}, http.StatusCreated)
	var k struct{ Key string }
	if err == nil {
		err = json.Unmarshal(b, &k)
	}
	return k.Key, err
}

func profile(email, ecid string, audiences ...string) map[string]any {
	ids := map[string]any{}
	if email != "" {
		ids["Email"] = []any{map[string]any{"id": email}}
	}
	if ecid != "" {
		ids["ECID"] = []any{map[string]any{"id": ecid}}
	}
	ups := map[string]any{}
	for _, a := range audiences {
		ups[a] = map[string]any{"status": "realized", "lastQualificationTime": "2026-11-30T10:00:00Z"}
	}
	return map[string]any{"person": map[string]any{"name": map[string]any{"firstName": "Dave"}}, "identityMap": ids, "segmentMembership": map[string]any{"ups": ups}}
}

func seed(ctx context.Context, base string, sim *simulator.Simulator, simURL string, history bool) (Seeded, error) {
	c := client{base}
	s := Seeded{URL: base, Email: "dave@example.com", ExcludedOnly: "erin@example.com", Destinations: map[string]string{}, Deliveries: 3 * daveUpdates}
	var err error
	if s.SupportKey, err = c.key("support"); err != nil {
		return s, err
	}
	if s.OperatorKey, err = c.key("operator"); err != nil {
		return s, err
	}
	ingest, err := c.key("ingest")
	if err != nil {
		return s, err
	}
	type dest struct {
		name, mapping string
		audiences     []string
	}
	dests := []dest{
		{"nps follow-up", "Email", []string{"aud-nps"}},
		{"crm sync", "ECID", []string{"aud-nps"}},
		{"loyalty survey", "Email", []string{"aud-loyalty"}},
		{"billing nps", "Email", []string{"aud-billing"}},
	}
	if history {
		dests = append(dests, dest{"web nps", "Email", []string{"aud-web"}})
	}
	for _, d := range dests {
		wf := "WF_" + fmt.Sprint(len(s.Destinations))
		sim.AddWorkflow(simulator.Workflow{ID: wf, Username: "user", Token: "token-" + wf + "-secret"})
		target := "email"
		if d.mapping != "Email" {
			target = "external_id"
		}
		b, err := c.do("POST", "/v1/destinations", s.OperatorKey, map[string]any{
			"name": d.name, "url": sim.EventURL(simURL, wf), "username": "user", "apiToken": "token-" + wf + "-secret",
			"identityMappings": []any{map[string]any{"source": d.mapping, "target": target}}, "audiences": d.audiences,
		}, http.StatusCreated)
		if err != nil {
			return s, err
		}
		var created struct{ ID string }
		if err := json.Unmarshal(b, &created); err != nil {
			return s, err
		}
		s.Destinations[d.name] = created.ID
		switch d.name {
		case "nps follow-up": // Dave's first update: a 503, then delivered
			sim.Script(wf, simulator.Step{Status: 503, Body: `{"meta":{"httpStatus":"503 - Service Unavailable"}}`})
		case "loyalty survey": // every one of Dave's updates is refused at once: dead letters
			steps := make([]simulator.Step, daveUpdates)
			for i := range steps {
				steps[i] = simulator.Step{Status: 400, Body: `{"meta":{"httpStatus":"400 - Bad Request","error":{"errorMessage":"Invalid field: loyaltyTier"}}}`}
			}
			sim.Script(wf, steps...)
		case "billing nps": // bad credentials: the circuit opens
			sim.ForceUnauthorized(wf, true)
		}
	}
	s.DeadLetters = daveUpdates

	post := func(p map[string]any) (string, error) {
		b, err := c.do("POST", "/v1/profiles", ingest, p, http.StatusAccepted)
		var r struct{ Results []struct{ UpdateID string } }
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err == nil && len(r.Results) != 1 {
			err = fmt.Errorf("ingest: %s", b)
		}
		if err != nil {
			return "", err
		}
		return r.Results[0].UpdateID, nil
	}
	for i := range daveUpdates {
		id, err := post(profile(s.Email, "", "aud-nps", "aud-loyalty"))
		if err != nil {
			return s, err
		}
		s.DaveUpdates = append(s.DaveUpdates, id)
		if i == 0 {
			s.FirstUpdate = id
			// The first update settles before the others go, so that it alone meets the 503.
			if err := settle(ctx, c, s.SupportKey, "/v1/deliveries?identity="+s.Email, 3, 0); err != nil {
				return s, err
			}
		}
	}
	if _, err := post(profile("ann@example.com", "ECID-ann-4587", "aud-nps")); err != nil {
		return s, err
	}
	if _, err := post(profile(s.ExcludedOnly, "", "aud-nps")); err != nil { // crm sync maps ECID only
		return s, err
	}
	for _, e := range []string{"bill@example.com", "bea@example.com"} {
		if _, err := post(profile(e, "", "aud-billing")); err != nil {
			return s, err
		}
	}
	if err := settle(ctx, c, s.SupportKey, "/v1/deliveries?identity="+s.Email, s.Deliveries, 0); err != nil {
		return s, err
	}
	if err := settle(ctx, c, s.SupportKey, "/v1/dead-letters?destinationId="+s.Destinations["loyalty survey"], s.DeadLetters, s.DeadLetters); err != nil {
		return s, err
	}
	s.Survey, err = seedSurveys(ctx, c, s.OperatorKey, sim, simURL)
	return s, err
}

// seedSurveys connects the simulator's brand "uibrand" and waits for its first sync.
func seedSurveys(ctx context.Context, c client, opKey string, sim *simulator.Simulator, simURL string) (SurveySeed, error) {
	const token = "ui-brand-token-0001"
	sim.AddBrand("uibrand", token)
	ss := SurveySeed{BrandID: "uibrand", Recipient: "bob@example.com", Finished: "carol@example.com", SurveyID: simulator.BrandSurveyPulse,
		SurveyName: "Quarterly Pulse", DistributionID: simulator.BrandDistPulse, InactiveName: "Old Feedback"}
	b, err := c.do("POST", "/v1/survey-connections", opKey, map[string]any{"name": "ui brand", "baseUrl": simURL + "/API/v3/", "apiToken": token}, http.StatusCreated)
	if err != nil {
		return ss, err
	}
	var conn struct{ ID string }
	if err := json.Unmarshal(b, &conn); err != nil {
		return ss, err
	}
	ss.ConnectionID = conn.ID
	if _, err := c.do("POST", "/v1/survey-connections/"+conn.ID+"/sync", opKey, nil, http.StatusAccepted); err != nil {
		return ss, err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		b, err := c.do("GET", "/v1/survey-connections/"+conn.ID, opKey, nil, http.StatusOK)
		if err != nil {
			return ss, err
		}
		var got struct {
			LastGoodSync *struct{ ID string } `json:"lastGoodSync"`
			BrandID      string               `json:"brandId"`
		}
		if err := json.Unmarshal(b, &got); err != nil {
			return ss, err
		}
		if got.LastGoodSync != nil && got.BrandID != "" {
			return ss, nil
		}
		if time.Now().After(deadline) {
			return ss, fmt.Errorf("seed: the survey connection did not sync in 60 s: %s", b)
		}
		select {
		case <-ctx.Done():
			return ss, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// settle waits until the search at path finds want deliveries, none pending or retrying (or,
// with dead > 0, exactly dead of them on that list).
func settle(ctx context.Context, c client, key, path string, want, dead int) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		n, open, err := count(c, key, path)
		if err != nil {
			return err
		}
		if n >= want && open == 0 && (dead == 0 || n == dead) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("seed: %s: %d deliveries, %d unfinished after 60 s (want %d)", path, n, open, want)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func count(c client, key, path string) (n, open int, err error) {
	cursor := ""
	for {
		p := path + "&limit=200"
		if cursor != "" {
			p += "&cursor=" + cursor
		}
		b, err := c.do("GET", p, key, nil, http.StatusOK)
		if err != nil {
			return 0, 0, err
		}
		var page struct {
			Deliveries []struct{ Status string }
			NextCursor *string
		}
		if err := json.Unmarshal(b, &page); err != nil {
			return 0, 0, err
		}
		for _, d := range page.Deliveries {
			n++
			if d.Status == "pending" || d.Status == "retrying" {
				open++
			}
		}
		if page.NextCursor == nil {
			return n, open, nil
		}
		cursor = *page.NextCursor
	}
}
