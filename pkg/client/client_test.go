package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/qgate/qgate/internal/app"
	"github.com/qgate/qgate/internal/config"
	"github.com/qgate/qgate/internal/kafka"
	"github.com/qgate/qgate/internal/simulator"
	"github.com/qgate/qgate/pkg/client"
)

const (
	adminKey = "client-test-admin-key-0123456789abcdef"
	audience = "aud-client-1111"
)

// syncBuffer collects a node's logs; they are shown when a test fails.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}
func (b *syncBuffer) Sync() error { return nil }
func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// env is a qgate node started in-process with an in-process Qualtrics simulator.
type env struct {
	t      *testing.T
	app    *app.App
	base   string
	sim    *simulator.Simulator
	simURL string
	admin  *client.Client
}

// start runs a qgate node (embedded broker, SQLite in a temp dir) that may deliver to the
// simulator on loopback; mutate adjusts the configuration.
func start(t *testing.T, mutate func(*config.Config)) *env {
	t.Helper()
	sim, srv, err := simulator.Start(simulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.AdminKey = adminKey
	cfg.Partitions = 4
	cfg.ProduceTimeout = 3 * time.Second
	cfg.AllowPrivateNetworks = true
	cfg.RetryBaseDelay = 20 * time.Millisecond
	cfg.RetryMaxDelay = 100 * time.Millisecond
	cfg.DeliveryTimeout = 2 * time.Second
	cfg.RegistryRefresh = 100 * time.Millisecond
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zapcore.InfoLevel))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		t.Fatalf("app.New: %v", err)
	}
	addr, err := a.Start()
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := a.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("qgate logs:\n%s", logs)
		}
	})
	e := &env{t: t, app: a, base: "http://" + addr, sim: sim, simURL: srv.URL}
	e.admin = e.client(adminKey)
	return e
}

func (e *env) client(key string, opts ...client.Option) *client.Client {
	e.t.Helper()
	c, err := client.New(e.base, key, opts...)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// key creates an API key of role with the admin client and returns a client using it.
func (e *env) key(role client.Role) (*client.Client, *client.CreatedKey) {
	e.t.Helper()
	k, err := e.admin.CreateKey(context.Background(), string(role)+" key", role)
	if err != nil {
		e.t.Fatalf("create %s key: %v", role, err)
	}
	return e.client(k.Secret), k
}

// workflow adds a simulator workflow and returns the body registering it as a destination.
func (e *env) workflow(name string) (client.NewDestination, string) {
	wf := "WF_" + name
	token := "token-" + name + "-secret"
	e.sim.AddWorkflow(simulator.Workflow{ID: wf, Username: "user-" + name, Token: token})
	return client.NewDestination{
		Name:             name,
		URL:              e.sim.EventURL(e.simURL, wf),
		Username:         "user-" + name,
		APIToken:         token,
		IdentityMappings: []client.IdentityMapping{{Source: "Email", Target: client.TargetEmail}},
		Audiences:        []string{audience},
	}, wf
}

// profile is a CDP profile with an email identity that has qualified for audience.
func profile(email string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{
		"person":      map[string]any{"name": map[string]any{"firstName": "Dave"}},
		"identityMap": map[string]any{"Email": []any{map[string]any{"id": email}}},
		"segmentMembership": map[string]any{"ups": map[string]any{
			audience: map[string]any{"lastQualificationTime": "2023-09-05T10:43:55.602687Z", "status": "realized"},
		}},
	})
	return b
}

// hashedProfile is refused: its email is a SHA-256 digest.
func hashedProfile() json.RawMessage {
	return json.RawMessage(`{"identityMap":{"Email":[{"id":"` + strings.Repeat("ab", 32) + `"}]},` +
		`"segmentMembership":{"ups":{"` + audience + `":{"lastQualificationTime":"2023-09-05T10:43:55Z","status":"realized"}}}}`)
}

// eventually polls cond (the observable API) until it holds, for up to 20 s.
func eventually(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		ok, last := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %s", what, last)
		}
		<-tick.C
	}
}

// awaitDelivery polls GetUpdate until the update's delivery to destID has status; a 404
// (not routed yet) is expected at first.
func awaitDelivery(t *testing.T, c *client.Client, updateID, destID, status string) client.Delivery {
	t.Helper()
	var got client.Delivery
	eventually(t, updateID+" → "+status, func() (bool, string) {
		v, err := c.GetUpdate(context.Background(), updateID)
		if client.IsNotFound(err) {
			return false, err.Error()
		}
		if err != nil {
			t.Fatalf("get update: %v", err)
		}
		for _, d := range v.Deliveries {
			if d.DestinationID == destID {
				got = d
				return d.Status == status, fmt.Sprintf("%+v", d)
			}
		}
		return false, fmt.Sprintf("%+v", v)
	})
	return got
}

func apiError(t *testing.T, err error, status int) *client.APIError {
	t.Helper()
	var e *client.APIError
	if !errors.As(err, &e) {
		t.Fatalf("want an *APIError with status %d, got %T %v", status, err, err)
	}
	if e.Status != status {
		t.Fatalf("status %d, want %d: %v", e.Status, status, err)
	}
	return e
}

// wantProblem asserts err is an APIError of status with a problem (path, code).
func wantProblem(t *testing.T, err error, status int, path, code string) *client.APIError {
	t.Helper()
	e := apiError(t, err, status)
	p := e.Problem(code)
	if p == nil || p.Path != path || p.Message == "" {
		t.Fatalf("want problem %q at %q, got %+v", code, path, e.Problems)
	}
	return e
}

// The whole life of a destination and an update, through the client only: keys, destination
// CRUD with versions and paging, a test event, ingest, delivery status, search, stats,
// pause/resume, delete and key revocation.
func TestKeysDestinationsAndDelivery(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()

	ingest, ingestKey := e.key(client.RoleIngest)
	op, opKey := e.key(client.RoleOperator)
	sup, supKey := e.key(client.RoleSupport)
	if !strings.HasPrefix(ingestKey.Secret, "qg_"+ingestKey.ID+"_") || ingestKey.Role != client.RoleIngest || ingestKey.CreatedAt.IsZero() {
		t.Fatalf("created key: %+v", ingestKey.Key)
	}
	keys, err := e.admin.ListKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Newest first by creation time; keys made within the same millisecond tie, in any order.
	var ids []string
	for i, k := range keys {
		if k.RevokedAt != nil {
			t.Fatalf("a fresh key is revoked: %+v", k)
		}
		if i > 0 && k.CreatedAt.After(keys[i-1].CreatedAt) {
			t.Fatalf("keys not newest first: %s (%v) after %s (%v)", k.ID, k.CreatedAt, keys[i-1].ID, keys[i-1].CreatedAt)
		}
		ids = append(ids, k.ID)
	}
	slices.Sort(ids)
	want := []string{supKey.ID, opKey.ID, ingestKey.ID}
	slices.Sort(want)
	if fmt.Sprint(ids) != fmt.Sprint(want) {
		t.Fatalf("keys %v, want %v", ids, want)
	}

	// Create, conflict, list (paged and iterated), get.
	spec, wf := e.workflow("nps")
	d, err := op.CreateDestination(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(d.ID, "dst_") || d.Version != 1 || d.APITokenLast4 != "cret" || !d.Enabled || d.Paused ||
		d.RateLimitPerMinute != 3000 || len(d.Audiences) != 1 || d.URL != spec.URL || d.CreatedAt.IsZero() {
		t.Fatalf("created: %+v", d)
	}
	spec2, _ := e.workflow("second")
	d2, err := op.CreateDestination(ctx, spec2)
	if err != nil {
		t.Fatal(err)
	}
	_, err = op.CreateDestination(ctx, spec)
	if e := wantProblem(t, err, http.StatusConflict, "name", "name_taken"); !client.IsConflict(e) {
		t.Fatal("IsConflict false on a 409")
	}

	page, err := op.ListDestinations(ctx, client.ListOptions{Limit: 1})
	if err != nil || len(page.Destinations) != 1 || page.Destinations[0].ID != d.ID || page.NextCursor == "" {
		t.Fatalf("first page: %+v %v", page, err)
	}
	page, err = op.ListDestinations(ctx, client.ListOptions{Limit: 1, Cursor: page.NextCursor})
	if err != nil || len(page.Destinations) != 1 || page.Destinations[0].ID != d2.ID {
		t.Fatalf("second page: %+v %v", page, err)
	}
	var names []string
	for dst, err := range op.AllDestinations(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, dst.Name)
	}
	if fmt.Sprint(names) != "[nps second]" {
		t.Fatalf("AllDestinations: %v", names)
	}
	_, err = op.ListDestinations(ctx, client.ListOptions{Cursor: "not-a-cursor"})
	wantProblem(t, err, http.StatusUnprocessableEntity, "query.cursor", "invalid_cursor")

	got, err := op.GetDestination(ctx, d.ID)
	if err != nil || got.ID != d.ID || got.Name != "nps" || got.Version != 1 {
		t.Fatalf("get: %+v %v", got, err)
	}

	// Update: a change with the right version, a stale one, an invalid one, a clear.
	upd, err := op.UpdateDestination(ctx, d.ID, client.DestinationPatch{Description: new("the NPS follow-up")}, 1)
	if err != nil || upd.Version != 2 || upd.Description != "the NPS follow-up" || upd.Name != "nps" || len(upd.Audiences) != 1 {
		t.Fatalf("update: %+v %v", upd, err)
	}
	_, err = op.UpdateDestination(ctx, d.ID, client.DestinationPatch{Description: new("lost update")}, 1)
	wantProblem(t, err, http.StatusConflict, "header.If-Match", "version_conflict")
	_, err = op.UpdateDestination(ctx, d.ID, client.DestinationPatch{
		IdentityMappings: []client.IdentityMapping{{Source: "Email", Target: "phone"}},
	}, 0)
	if e := wantProblem(t, err, http.StatusUnprocessableEntity, "identityMappings[0].target", "unsupported_target"); !client.IsInvalid(e) ||
		!strings.Contains(e.Error(), "identityMappings[0].target") {
		t.Fatalf("422 error: %v", e)
	}
	upd, err = op.UpdateDestination(ctx, d.ID, client.DestinationPatch{Description: new("")}, 0)
	if err != nil || upd.Version != 3 || upd.Description != "" {
		t.Fatalf("clearing the description: %+v %v", upd, err)
	}

	// A test event reaches the workflow and is reported.
	res, err := op.TestDestination(ctx, d.ID, nil)
	if err != nil || !res.Delivered || res.StatusCode != 200 || res.Outcome != "delivered" || len(res.Payload) == 0 {
		t.Fatalf("test: %+v %v", res, err)
	}
	if runs := e.sim.Runs(wf); len(runs) != 1 {
		t.Fatalf("the test event made %d runs", len(runs))
	}
	res, err = op.TestDestination(ctx, d.ID, profile("tester@example.com"))
	if err != nil || !res.Delivered || !bytes.Contains(res.Payload, []byte("tester@example.com")) {
		t.Fatalf("test with a profile: %+v %v", res, err)
	}
	_, err = op.TestDestination(ctx, d.ID, hashedProfile())
	wantProblem(t, err, http.StatusUnprocessableEntity, "profile.identityMap.Email[0].id", "hashed_email")

	// Ingest one profile and follow it to the workflow.
	resp, err := ingest.Ingest(ctx, profile("Jane.Doe@example.com"))
	if err != nil || resp.Accepted != 1 || len(resp.Results) != 1 || resp.Results[0].Status != client.IngestAccepted || resp.Results[0].UpdateID == "" {
		t.Fatalf("ingest: %+v %v", resp, err)
	}
	updateID := resp.UpdateIDs()[0]
	dl := awaitDelivery(t, sup, updateID, d.ID, client.StatusDelivered)
	if dl.UpdateID != updateID || len(dl.Attempts) != 1 || dl.Attempts[0].N != 1 || dl.Attempts[0].StatusCode != 200 || dl.Attempts[0].Outcome != "delivered" {
		t.Fatalf("delivery: %+v", dl)
	}
	one, err := sup.GetDelivery(ctx, dl.DeliveryID)
	if err != nil || one.DeliveryID != dl.DeliveryID || one.Status != client.StatusDelivered || one.DestinationID != d.ID {
		t.Fatalf("get delivery: %+v %v", one, err)
	}
	runs := e.sim.Runs(wf)
	if last := runs[len(runs)-1]; last.IdempotencyKey != dl.DeliveryID || !bytes.Contains(last.Body, []byte("jane.doe@example.com")) {
		t.Fatalf("the workflow's last run: %+v", last)
	}
	view, err := sup.GetUpdate(ctx, updateID)
	if err != nil || view.ProfileKey == "" || view.RoutedAt.IsZero() || len(view.Audiences) != 1 || view.Audiences[0] != audience {
		t.Fatalf("update view: %+v %v", view, err)
	}

	// Search by identity (any case), with filters that exclude it, and by iteration.
	found, err := sup.SearchDeliveries(ctx, client.DeliveryQuery{Identity: "  JANE.DOE@example.com", DestinationID: d.ID})
	if err != nil || len(found.Deliveries) != 1 || found.Deliveries[0].DeliveryID != dl.DeliveryID || found.NextCursor != "" {
		t.Fatalf("search by identity: %+v %v", found, err)
	}
	for name, q := range map[string]client.DeliveryQuery{
		"other identity": {Identity: "someone@example.com"},
		"other status":   {Status: client.StatusRetrying},
		"since later":    {Since: time.Now().Add(time.Hour)},
		"until earlier":  {Until: dl.UpdatedAt.Add(-time.Hour)},
	} {
		if p, err := sup.SearchDeliveries(ctx, q); err != nil || len(p.Deliveries) != 0 {
			t.Fatalf("search %s: %+v %v", name, p, err)
		}
	}
	// Both destinations have the audience: two deliveries, walked a page of one at a time.
	dl2 := awaitDelivery(t, sup, updateID, d2.ID, client.StatusDelivered)
	seen := map[string]string{}
	for got, err := range sup.AllDeliveries(ctx, client.DeliveryQuery{Since: dl.CreatedAt.Add(-time.Minute), Limit: 1}) {
		if err != nil {
			t.Fatalf("AllDeliveries: %v", err)
		}
		seen[got.DeliveryID] = got.DestinationID
	}
	if len(seen) != 2 || seen[dl.DeliveryID] != d.ID || seen[dl2.DeliveryID] != d2.ID {
		t.Fatalf("AllDeliveries yielded %v", seen)
	}
	_, err = sup.SearchDeliveries(ctx, client.DeliveryQuery{Limit: 500})
	wantProblem(t, err, http.StatusUnprocessableEntity, "query.limit", "invalid_limit")

	// Stats, with a support and an operator key.
	for _, c := range []*client.Client{sup, op} {
		st, err := c.DestinationStats(ctx, d.ID, client.Window1h)
		if err != nil || st.DestinationID != d.ID || st.Window != "1h" || st.Received != 1 || st.ByStatus[client.StatusDelivered] != 1 ||
			st.AttemptLatencyMs.Samples != 1 || st.AttemptLatencyMs.P50 == nil || st.Backlog != 0 || st.Circuit.State != "closed" {
			t.Fatalf("stats: %+v %v", st, err)
		}
	}
	if st, err := sup.DestinationStats(ctx, d.ID, ""); err != nil || st.Window != "24h" {
		t.Fatalf("default window: %+v %v", st, err)
	}
	_, err = sup.DestinationStats(ctx, d.ID, "2h")
	wantProblem(t, err, http.StatusUnprocessableEntity, "query.window", "invalid_window")

	// Pause and resume are idempotent and versioned.
	p, err := op.PauseDestination(ctx, d.ID)
	if err != nil || !p.Paused || p.Version != 4 {
		t.Fatalf("pause: %+v %v", p, err)
	}
	if p, err = op.PauseDestination(ctx, d.ID); err != nil || !p.Paused || p.Version != 4 {
		t.Fatalf("pause again: %+v %v", p, err)
	}
	if p, err = op.ResumeDestination(ctx, d.ID); err != nil || p.Paused || p.Version != 5 {
		t.Fatalf("resume: %+v %v", p, err)
	}

	// Delete: gone afterwards.
	if err := op.DeleteDestination(ctx, d.ID); err != nil {
		t.Fatal(err)
	}
	_, err = op.GetDestination(ctx, d.ID)
	if e := wantProblem(t, err, http.StatusNotFound, "id", "destination_not_found"); !client.IsNotFound(e) {
		t.Fatal("IsNotFound false on a 404")
	}
	if err := op.DeleteDestination(ctx, d.ID); !client.IsNotFound(err) {
		t.Fatalf("second delete: %v", err)
	}

	// Revocation: the key stops working at once; a second revocation is a 404.
	if err := e.admin.RevokeKey(ctx, ingestKey.ID); err != nil {
		t.Fatal(err)
	}
	resp, err = ingest.Ingest(ctx, profile("late@example.com"))
	if resp != nil || !client.IsUnauthorized(err) {
		t.Fatalf("ingest with a revoked key: %+v %v", resp, err)
	}
	if strings.Contains(err.Error(), ingestKey.Secret) {
		t.Fatalf("the error shows the key: %v", err)
	}
	wantProblem(t, e.admin.RevokeKey(ctx, ingestKey.ID), http.StatusNotFound, "id", "key_not_found")
	keys, err = e.admin.ListKeys(ctx)
	if err != nil || len(keys) != 3 || keys[2].ID != ingestKey.ID || keys[2].RevokedAt == nil {
		t.Fatalf("keys after revocation: %+v %v", keys, err)
	}
}

// Ingest: a batch with a bad profile is accepted in part; with none accepted the client returns
// the verdicts and an error rooted at each profile's path in the body.
func TestIngestVerdicts(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	ingest, _ := e.key(client.RoleIngest)

	resp, err := ingest.Ingest(ctx, profile("a@example.com"), hashedProfile(), profile("b@example.com"))
	if err != nil || resp.Accepted != 2 || len(resp.Results) != 3 || len(resp.UpdateIDs()) != 2 {
		t.Fatalf("partial batch: %+v %v", resp, err)
	}
	if r := resp.Results[1]; r.Index != 1 || r.Status != client.IngestRejected || r.UpdateID != "" || len(r.Errors) == 0 || r.Errors[0].Code != "hashed_email" {
		t.Fatalf("the rejected verdict: %+v", r)
	}

	// None accepted (batch): 422 with the response and an error holding it.
	resp, err = ingest.Ingest(ctx, hashedProfile(), hashedProfile())
	apiErr := wantProblem(t, err, http.StatusUnprocessableEntity, "profiles[0].identityMap.Email[0].id", "hashed_email")
	if resp == nil || resp.Accepted != 0 || len(resp.Results) != 2 || apiErr.Ingest != resp || len(apiErr.Problems) != 2 ||
		apiErr.Problems[1].Path != "profiles[1].identityMap.Email[0].id" || !client.IsInvalid(err) {
		t.Fatalf("all rejected: %+v %+v", resp, apiErr)
	}
	// None accepted (single): paths as in the single form.
	resp, err = ingest.Ingest(ctx, hashedProfile())
	if apiErr := wantProblem(t, err, http.StatusUnprocessableEntity, "identityMap.Email[0].id", "hashed_email"); resp == nil || apiErr.Ingest != resp {
		t.Fatalf("single rejected: %+v %v", resp, err)
	}

	// Refused before sending: not JSON, or nothing.
	if resp, err := ingest.Ingest(ctx, json.RawMessage(`{"identityMap":`)); resp != nil || err == nil || client.StatusOf(err) != 0 {
		t.Fatalf("invalid JSON: %+v %v", resp, err)
	}
	if resp, err := ingest.Ingest(ctx); resp != nil || err == nil || client.StatusOf(err) != 0 {
		t.Fatalf("no profiles: %+v %v", resp, err)
	}
	// A 400 from qgate has no verdicts: a nil response.
	resp, err = ingest.Ingest(ctx, json.RawMessage(`{"profiles": []}`))
	if resp != nil {
		t.Fatalf("empty batch gave a response: %+v", resp)
	}
	wantProblem(t, err, http.StatusBadRequest, "profiles", "empty_batch")
}

// A dead letter is listed, replayed by ID, delivered; a replay by filter finds nothing left; a
// replay naming IDs and a filter is refused.
func TestDeadLettersAndReplay(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	ingest, _ := e.key(client.RoleIngest)
	op, _ := e.key(client.RoleOperator)
	sup, _ := e.key(client.RoleSupport)
	spec, wf := e.workflow("replay")
	d, err := op.CreateDestination(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	e.sim.Script(wf, simulator.Step{Status: 400, Body: `{"meta":{"httpStatus":"400 - Bad Request","error":{"errorMessage":"survey closed"}}}`})
	resp, err := ingest.Ingest(ctx, profile("replay.me@example.com"))
	if err != nil {
		t.Fatal(err)
	}
	dead := awaitDelivery(t, sup, resp.UpdateIDs()[0], d.ID, client.StatusDeadLettered)
	if dead.Reason != "client_error" || len(dead.Attempts) != 1 || dead.Attempts[0].StatusCode != 400 || !strings.Contains(dead.Attempts[0].Error, "survey closed") {
		t.Fatalf("dead letter: %+v", dead)
	}

	page, err := sup.DeadLetters(ctx, client.DeadLetterQuery{DestinationID: d.ID, Identity: "Replay.Me@example.com"})
	if err != nil || len(page.Deliveries) != 1 || page.Deliveries[0].DeliveryID != dead.DeliveryID || page.Deliveries[0].Status != client.StatusDeadLettered {
		t.Fatalf("dead letters: %+v %v", page, err)
	}
	if page, err := sup.DeadLetters(ctx, client.DeadLetterQuery{DestinationID: d.ID, Reason: "retry_window_exceeded"}); err != nil || len(page.Deliveries) != 0 {
		t.Fatalf("dead letters by another reason: %+v %v", page, err)
	}

	_, err = sup.ReplayDeadLetters(ctx, client.ReplayRequest{DeliveryIDs: []string{dead.DeliveryID}, Filter: &client.ReplayFilter{DestinationID: d.ID}})
	wantProblem(t, err, http.StatusUnprocessableEntity, "filter", "ambiguous_selection")
	_, err = sup.ReplayDeadLetters(ctx, client.ReplayRequest{Filter: &client.ReplayFilter{DestinationID: "dst_nope"}})
	wantProblem(t, err, http.StatusNotFound, "filter.destinationId", "destination_not_found")

	res, err := sup.ReplayDeadLetters(ctx, client.ReplayRequest{DeliveryIDs: []string{dead.DeliveryID}})
	if err != nil || res.Replayed != 1 || len(res.DeliveryIDs) != 1 || res.DeliveryIDs[0] != dead.DeliveryID {
		t.Fatalf("replay: %+v %v", res, err)
	}
	again := awaitDelivery(t, sup, resp.UpdateIDs()[0], d.ID, client.StatusDelivered)
	if len(again.Attempts) != 2 || again.Attempts[1].N != 2 || again.Attempts[1].StatusCode != 200 {
		t.Fatalf("after replay: %+v", again)
	}
	since := time.Now().Add(-time.Hour)
	res, err = sup.ReplayDeadLetters(ctx, client.ReplayRequest{Filter: &client.ReplayFilter{DestinationID: d.ID, Since: &since, Limit: 10}})
	if err != nil || res.Replayed != 0 || len(res.DeliveryIDs) != 0 {
		t.Fatalf("replay by filter: %+v %v", res, err)
	}
}

// recorder is a RoundTripper that remembers the headers of the last request.
type recorder struct {
	mu   sync.Mutex
	last http.Header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.last = req.Header.Clone()
	r.mu.Unlock()
	return http.DefaultTransport.RoundTrip(req)
}

// Roles, keys and options: 401 and 403 map to APIError, the custom HTTP client and User-Agent
// are used, and the key shows nowhere but the Authorization header.
func TestAuthOptionsAndSecrecy(t *testing.T) {
	e := start(t, nil)
	ctx := context.Background()
	ingest, _ := e.key(client.RoleIngest)

	_, err := ingest.ListDestinations(ctx, client.ListOptions{})
	if e := wantProblem(t, err, http.StatusForbidden, "header.Authorization", "forbidden"); !client.IsForbidden(e) || e.Method != "GET" || e.Path != "/v1/destinations" {
		t.Fatalf("403: %+v", e)
	}

	const bogus = "qg_nosuchkey_abcdefghijklmnopqrstuvwxyz234567"
	rec := &recorder{}
	c := e.client(bogus, client.WithHTTPClient(&http.Client{Transport: rec, Timeout: 10 * time.Second}), client.WithUserAgent("client-test/9"))
	_, err = c.GetUpdate(ctx, "u-1")
	wantProblem(t, err, http.StatusUnauthorized, "header.Authorization", "unauthorized")
	if !client.IsUnauthorized(err) || strings.Contains(err.Error(), bogus) {
		t.Fatalf("401: %v", err)
	}
	rec.mu.Lock()
	ua, auth := rec.last.Get("User-Agent"), rec.last.Get("Authorization")
	rec.mu.Unlock()
	if ua != "client-test/9" || auth != "Bearer "+bogus {
		t.Fatalf("sent User-Agent %q, Authorization %q", ua, auth)
	}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), fmt.Sprintf("%v", *c), fmt.Sprintf("%+v", *c)} {
		if strings.Contains(s, bogus) || !strings.Contains(s, e.base) {
			t.Fatalf("printing the client: %s", s)
		}
	}

	// Unknown resources are 404s with their codes.
	sup, _ := e.key(client.RoleSupport)
	_, err = sup.GetUpdate(ctx, "no-such-update")
	wantProblem(t, err, http.StatusNotFound, "updateId", "update_not_found")
	_, err = sup.GetDelivery(ctx, "dlv_00000000000000000000000000000000")
	if !client.IsNotFound(err) || !apiError(t, err, 404).HasCode("delivery_not_found") {
		t.Fatalf("unknown delivery: %v", err)
	}

	// A transport failure is not an APIError and does not show the key either.
	down, err := client.New("http://127.0.0.1:1", bogus)
	if err != nil {
		t.Fatal(err)
	}
	_, err = down.ListKeys(ctx)
	var apiErr *client.APIError
	if err == nil || errors.As(err, &apiErr) || strings.Contains(err.Error(), bogus) || !strings.Contains(err.Error(), "/v1/keys") {
		t.Fatalf("transport failure: %v", err)
	}

	for _, base := range []string{"", "localhost:8080", "ftp://host", "http://", "http://user:pw@host", "http://host/?q=1"} {
		if _, err := client.New(base, "k"); err == nil {
			t.Errorf("New(%q) accepted", base)
		}
	}
}

// A base URL with a path prefix keeps it (behind a reverse proxy).
func TestBaseURLPathPrefix(t *testing.T) {
	e := start(t, nil)
	proxy := http.NewServeMux()
	proxy.Handle("/qgate/", http.StripPrefix("/qgate", e.app.Handler()))
	srv := &http.Server{Handler: proxy}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c, err := client.New("http://"+ln.Addr().String()+"/qgate/", adminKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateKey(context.Background(), "via proxy", client.RoleSupport); err != nil {
		t.Fatal(err)
	}
	if keys, err := c.ListKeys(context.Background()); err != nil || len(keys) != 1 || keys[0].Name != "via proxy" {
		t.Fatalf("keys through the prefix: %+v %v", keys, err)
	}
}

// While the node drains, ingest is a 503 error body: no verdicts, a Retry-After.
func TestIngestWhileShuttingDown(t *testing.T) {
	e := start(t, nil)
	ingest, _ := e.key(client.RoleIngest)
	e.app.DrainIngest()
	resp, err := ingest.Ingest(context.Background(), profile("drain@example.com"))
	apiErr := wantProblem(t, err, http.StatusServiceUnavailable, "", "shutting_down")
	if resp != nil || apiErr.Ingest != nil || apiErr.RetryAfter < time.Second || !client.IsUnavailable(err) || !strings.Contains(err.Error(), "retry after") {
		t.Fatalf("draining: %+v %+v", resp, apiErr)
	}
}

// When Kafka does not acknowledge, the 503 carries the verdicts: the valid profile is
// "unavailable" (safe to send again), the invalid one rejected.
func TestIngestBrokerDown(t *testing.T) {
	broker, err := kafka.StartEmbedded(0)
	if err != nil {
		t.Fatal(err)
	}
	defer broker.Close()
	e := start(t, func(c *config.Config) {
		c.KafkaBrokers = broker.Addrs()
		c.SecretKey = strings.Repeat("ab", 32)
		c.ProduceTimeout = 2 * time.Second
	})
	ingest, _ := e.key(client.RoleIngest)
	if _, err := ingest.Ingest(context.Background(), profile("up@example.com")); err != nil {
		t.Fatalf("broker up: %v", err)
	}
	broker.Close()

	resp, err := ingest.Ingest(context.Background(), profile("down@example.com"), hashedProfile())
	apiErr := apiError(t, err, http.StatusServiceUnavailable)
	if resp == nil || apiErr.Ingest != resp || apiErr.RetryAfter < time.Second || resp.Accepted != 0 || len(resp.Results) != 2 {
		t.Fatalf("broker down: %+v %+v", resp, apiErr)
	}
	if r := resp.Results[0]; r.Status != client.IngestUnavailable || r.UpdateID != "" {
		t.Fatalf("valid profile: %+v", r)
	}
	if r := resp.Results[1]; r.Status != client.IngestRejected {
		t.Fatalf("invalid profile: %+v", r)
	}
	if !strings.HasPrefix(apiErr.Problems[0].Path, "profiles[0]") {
		t.Fatalf("problems: %+v", apiErr.Problems)
	}
}
