package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/qgate/qgate/internal/app"
	"github.com/qgate/qgate/internal/config"
	"github.com/qgate/qgate/internal/simulator"
	"github.com/qgate/qgate/pkg/client"
)

var updateGolden = flag.Bool("update", false, "rewrite testdata/cli/*.golden")

const (
	cliAdminKey = "cli-test-admin-key-0123456789abcdef"
	cliAudience = "aud-cli-1111"
	npsToken    = "token-nps-cli-secret-9876"
	badToken    = "token-bad-cli-secret-5432"
)

type logSink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logSink) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}
func (l *logSink) Sync() error { return nil }
func (l *logSink) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// cliEnv is a qgate node started in-process with a Qualtrics simulator; the CLI runs
// through run(), as main does, against its real HTTP listener.
type cliEnv struct {
	t       *testing.T
	base    string
	sim     *simulator.Simulator
	simURL  string
	admin   *client.Client
	keys    map[string]string // role → key
	outputs bytes.Buffer      // everything every command printed, to look for secrets
}

func startCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	sim, srv, err := simulator.Start(simulator.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.AdminKey = cliAdminKey
	cfg.Partitions = 2
	cfg.ProduceTimeout = 3 * time.Second
	cfg.AllowPrivateNetworks = true
	cfg.RetryBaseDelay = 20 * time.Millisecond
	cfg.RetryMaxDelay = 100 * time.Millisecond
	cfg.DeliveryTimeout = 2 * time.Second
	cfg.RegistryRefresh = 100 * time.Millisecond
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &logSink{}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zapcore.InfoLevel))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := a.Start()
	if err != nil {
		t.Fatal(err)
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
	e := &cliEnv{t: t, base: "http://" + addr, sim: sim, simURL: srv.URL, keys: map[string]string{}}
	if e.admin, err = client.New(e.base, cliAdminKey); err != nil {
		t.Fatal(err)
	}
	for _, role := range []client.Role{client.RoleIngest, client.RoleOperator, client.RoleSupport} {
		k, err := e.admin.CreateKey(ctx, string(role)+" cli", role)
		if err != nil {
			t.Fatal(err)
		}
		e.keys[string(role)] = k.Secret
	}
	return e
}

// result is one CLI run.
type result struct {
	code           int
	stdout, stderr string
}

// qgate runs the CLI with role's key in QGATE_API_KEY (role "" sets none) and stdin.
func (e *cliEnv) qgate(role, stdin string, args ...string) result {
	e.t.Helper()
	env := map[string]string{"QGATE_URL": e.base}
	if role != "" {
		env["QGATE_API_KEY"] = e.keys[role]
	}
	var out, errOut bytes.Buffer
	code := runCLI(args, func(k string) string { return env[k] }, strings.NewReader(stdin), &out, &errOut)
	e.outputs.WriteString(out.String() + errOut.String())
	return result{code, out.String(), errOut.String()}
}

// must runs the CLI and fails the test unless it exits with want.
func (e *cliEnv) must(want int, role, stdin string, args ...string) result {
	e.t.Helper()
	r := e.qgate(role, stdin, args...)
	if r.code != want {
		e.t.Fatalf("qgate %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, want, r.stdout, r.stderr)
	}
	return r
}

// normaliser replaces what changes from run to run (IDs, times, latencies, ports) with stable
// placeholders, numbered in order of appearance, and evens out column padding (which follows
// the widths of the replaced values).
type normaliser struct {
	seen map[string]string
	n    map[string]int
}

var (
	reDest     = regexp.MustCompile(`dst_[0-9a-f-]{36}`)
	reDelivery = regexp.MustCompile(`dlv_[0-9a-f]{32}`)
	reUUID     = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
	reHash     = regexp.MustCompile(`\b[0-9a-f]{32}\b`)
	reTime     = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z`)
	reMS       = regexp.MustCompile(`\d+ ms`)
	rePort     = regexp.MustCompile(`127\.0\.0\.1:\d+`)
	reSpaces   = regexp.MustCompile(`  +`)
	reTrailing = regexp.MustCompile(` +\n`)
)

func (n *normaliser) name(kind string) func(string) string {
	return func(s string) string {
		if p, ok := n.seen[s]; ok {
			return p
		}
		n.n[kind]++
		p := fmt.Sprintf("<%s%d>", kind, n.n[kind])
		n.seen[s] = p
		return p
	}
}

func (n *normaliser) clean(s string) string {
	s = reDest.ReplaceAllStringFunc(s, n.name("dst"))
	s = reDelivery.ReplaceAllStringFunc(s, n.name("dlv"))
	s = reUUID.ReplaceAllStringFunc(s, n.name("update"))
	s = reHash.ReplaceAllStringFunc(s, n.name("hash"))
	s = reTime.ReplaceAllString(s, "<time>")
	s = reMS.ReplaceAllString(s, "<n> ms")
	s = rePort.ReplaceAllString(s, "127.0.0.1:<port>")
	s = reSpaces.ReplaceAllString(s, "  ")
	return reTrailing.ReplaceAllString(s, "\n")
}

// golden compares got with testdata/cli/NAME.golden (go test -update rewrites it).
func golden(t *testing.T, n *normaliser, name string, r result) {
	t.Helper()
	got := fmt.Sprintf("exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, r.stderr)
	if n != nil {
		got = n.clean(got)
	}
	compare(t, name, got)
}

// goldenRows is golden for a list whose order the test does not control (deliveries that
// finished at the same moment at two destinations): the lines after stdout's first are sorted.
func goldenRows(t *testing.T, n *normaliser, name string, r result) {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(n.clean(r.stdout), "\n"), "\n")
	if len(lines) > 1 {
		slices.Sort(lines[1:])
	}
	compare(t, name, fmt.Sprintf("exit %d\n--- stdout\n%s\n--- stderr\n%s", r.code, strings.Join(lines, "\n"), n.clean(r.stderr)))
}

func compare(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "cli", name+".golden")
	if *updateGolden {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden %s: %v (run go test ./cmd/qgate -run CLI -update)", name, err)
	}
	if string(want) != got {
		t.Errorf("%s differs from %s:\n%s", name, path, got)
	}
}

func (e *cliEnv) writeFile(name string, v any) string {
	e.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	p := filepath.Join(e.t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		e.t.Fatal(err)
	}
	return p
}

func (e *cliEnv) destinationSpec(name, workflow, token string) map[string]any {
	e.sim.AddWorkflow(simulator.Workflow{ID: workflow, Username: "user-" + workflow, Token: token})
	return map[string]any{
		"name": name, "url": e.sim.EventURL(e.simURL, workflow), "username": "user-" + workflow, "apiToken": token,
		"identityMappings": []any{map[string]any{"source": "Email", "target": "email"}},
		"audiences":        []any{cliAudience},
	}
}

func cliProfile(email string) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"identityMap": {"Email": [{"id": %q, "primary": true}]},
		"segmentMembership": {"ups": {%q: {"status": "realized", "lastQualificationTime": "2026-11-01T10:00:00Z"}}}}`, email, cliAudience))
}

// await polls the node (through the client, as support would) until cond holds, for 20 s.
// createChannel registers a survey-watch notification channel (operator API) and returns its ID.
func (e *cliEnv) createChannel(name string) string {
	e.t.Helper()
	body, _ := json.Marshal(map[string]any{"name": name, "kind": "webhook", "url": e.simURL + "/hook",
		"secret": "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32)), "events": []string{"survey.request"}})
	req, _ := http.NewRequest(http.MethodPost, e.base+"/v1/notification-channels", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.keys["operator"])
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated || out.ID == "" {
		e.t.Fatalf("create channel: %d %v", resp.StatusCode, err)
	}
	return out.ID
}

func (e *cliEnv) await(what string, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			e.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCLIHelpAtEveryLevel(t *testing.T) {
	e := &cliEnv{t: t, base: "http://127.0.0.1:1", keys: map[string]string{}}
	for name, args := range map[string][]string{
		"help":                     {"--help"},
		"help-destinations":        {"destinations", "--help"},
		"help-destinations-create": {"destinations", "create", "--help"},
		"help-deliveries-search":   {"deliveries", "search", "-h"},
		"help-dead-letters-replay": {"dead-letters", "replay", "--help"},
		"help-stats":               {"stats", "--help"},
		"help-alerts-list":         {"alerts", "list", "--help"},
	} {
		golden(t, nil, name, e.must(exitOK, "", "", args...))
	}
	// Every command of every group has help, naming its flags.
	for _, g := range apiGroups() {
		e.must(exitOK, "", "", "help", g.name)
		for _, c := range g.commands {
			args := []string{g.name, c.name, "--help"}
			if c.name == "" {
				args = []string{g.name, "--help"}
			}
			if r := e.must(exitOK, "", "", args...); !strings.Contains(r.stdout, "usage: qgate "+g.name) || !strings.Contains(r.stdout, "--url") {
				t.Errorf("%v: help %q", args, r.stdout)
			}
		}
	}
}

func TestCLIUsageErrorsExit2(t *testing.T) {
	e := &cliEnv{t: t, base: "http://127.0.0.1:1", keys: map[string]string{"x": "some-key"}}
	for name, args := range map[string][]string{
		"usage-unknown-command":  {"destinations", "frobnicate"},
		"usage-missing-argument": {"destinations", "get"},
		"usage-bad-status":       {"deliveries", "search", "--status", "lost"},
		"usage-bad-output":       {"destinations", "list", "-o", "yaml"},
		"usage-replay-nothing":   {"dead-letters", "replay", "--yes"},
		"usage-bad-since":        {"deliveries", "search", "--since", "yesterday"},
		"usage-no-group-command": {"dead-letters"},
	} {
		golden(t, nil, name, e.must(exitUsage, "x", "", args...))
	}
	golden(t, nil, "usage-no-key", e.must(exitUsage, "", "", "destinations", "list"))
	// A file with a misspelt field is refused before anything is sent.
	p := filepath.Join(t.TempDir(), "d.json")
	if err := os.WriteFile(p, []byte(`{"name": "x", "audiance": ["a"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := e.must(exitUsage, "x", "", "destinations", "create", "-f", p); !strings.Contains(r.stderr, `unknown field "audiance"`) {
		t.Errorf("misspelt field: %q", r.stderr)
	}
}

func TestCLIAgainstALiveNode(t *testing.T) {
	e := startCLIEnv(t)
	n := &normaliser{seen: map[string]string{}, n: map[string]int{}}
	ctx := context.Background()

	// Auth and not found.
	golden(t, n, "auth-unknown-key", func() result {
		e.keys["bogus"] = "qg_bogus_0000000000000000"
		return e.must(exitAuth, "bogus", "", "destinations", "list")
	}())
	golden(t, n, "auth-wrong-role", e.must(exitAuth, "support", "", "destinations", "list"))
	golden(t, n, "notfound-destination-id", e.must(exitNotFound, "operator", "", "destinations", "get", "dst_01900000-0000-7000-8000-000000000000"))
	golden(t, n, "notfound-destination-name", e.must(exitNotFound, "operator", "", "destinations", "get", "no such destination"))
	golden(t, n, "notfound-update", e.must(exitNotFound, "support", "", "updates", "get", "01900000-0000-7000-8000-000000000000"))

	// Register two destinations: one that answers, one that refuses (400, dead letter).
	nps := e.writeFile("nps.json", e.destinationSpec("nps follow-up", "WF_NPS", npsToken))
	golden(t, n, "destinations-create", e.must(exitOK, "operator", "", "destinations", "create", "-f", nps))
	bad := e.destinationSpec("bad request", "WF_BAD", badToken)
	b, _ := json.Marshal(bad)
	r := e.must(exitOK, "operator", string(b), "destinations", "create", "-f", "-", "-o", "json")
	var badDest client.Destination
	if err := json.Unmarshal([]byte(r.stdout), &badDest); err != nil || badDest.APITokenLast4 != badToken[len(badToken)-4:] {
		t.Fatalf("create -o json: %v %s", err, r.stdout)
	}
	golden(t, n, "destinations-create-invalid", e.must(exitFailed, "operator", `{"name": "", "url": "ftp://x", "username": "", "apiToken": "", "identityMappings": [], "audiences": []}`, "destinations", "create", "-f", "-"))
	golden(t, n, "destinations-list", e.must(exitOK, "operator", "", "destinations", "list"))
	golden(t, n, "destinations-get-by-name", e.must(exitOK, "operator", "", "destinations", "get", "nps follow-up"))
	patch := e.writeFile("patch.json", map[string]any{"description": "NPS survey after a purchase", "rateLimitPerMinute": 600})
	golden(t, n, "destinations-update", e.must(exitOK, "operator", "", "destinations", "update", "nps follow-up", "-f", patch, "--if-match", "1"))
	golden(t, n, "destinations-update-conflict", e.must(exitFailed, "operator", "", "destinations", "update", "nps follow-up", "-f", patch, "--if-match", "1"))
	golden(t, n, "destinations-test", e.must(exitOK, "operator", "", "destinations", "test", "nps follow-up"))
	golden(t, n, "destinations-test-refused", func() result {
		e.sim.Script("WF_BAD", simulator.Step{Status: 400, Body: `{"meta":{"httpStatus":"400 - Bad Request","error":{"errorMessage":"field x is wrong"}}}`})
		return e.must(exitFailed, "operator", "", "destinations", "test", "bad request")
	}())
	golden(t, n, "destinations-pause", e.must(exitOK, "operator", "", "destinations", "pause", "nps follow-up"))
	golden(t, n, "destinations-resume", e.must(exitOK, "operator", "", "destinations", "resume", "nps follow-up"))

	// Three updates of one person: delivered to nps, dead-lettered at "bad request".
	e.sim.Script("WF_BAD", simulator.Step{Status: 400, Body: `{"meta":{"httpStatus":"400 - Bad Request"}}`}, simulator.Step{Status: 400}, simulator.Step{Status: 400})
	ingest, _ := client.New(e.base, e.keys["ingest"])
	ingestPat := func(times int) []string { // times updates of pat, one request each; their IDs
		var ids []string
		for range times {
			resp, err := ingest.Ingest(ctx, cliProfile("pat@example.com"))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, resp.UpdateIDs()...)
		}
		return ids
	}
	updates := ingestPat(3)
	support, _ := client.New(e.base, e.keys["support"])
	e.await("three dead letters and three deliveries", func() bool {
		dl, err := support.DeadLetters(ctx, client.DeadLetterQuery{DestinationID: badDest.ID})
		dv, err2 := support.SearchDeliveries(ctx, client.DeliveryQuery{Status: client.StatusDelivered, Identity: "pat@example.com"})
		return err == nil && err2 == nil && len(dl.Deliveries) == 3 && len(dv.Deliveries) == 3
	})
	// Name every update and delivery in a fixed order (update by update, nps first), so the
	// placeholders do not depend on the order the deliveries finished in.
	var badOf []string // the dead letter of each update
	for _, u := range updates {
		n.name("update")(u)
		v, err := support.GetUpdate(ctx, u)
		if err != nil || len(v.Deliveries) != 2 {
			t.Fatalf("update %s: %v %+v", u, err, v)
		}
		slices.SortFunc(v.Deliveries, func(a, b client.Delivery) int { return strings.Compare(b.Status, a.Status) }) // delivered first
		n.name("dlv")(v.Deliveries[0].DeliveryID)
		n.name("dlv")(v.Deliveries[1].DeliveryID)
		badOf = append(badOf, v.Deliveries[1].DeliveryID)
	}
	r = e.must(exitOK, "support", "", "updates", "get", updates[0])
	if !strings.Contains(r.stdout, "delivered") || !strings.Contains(r.stdout, "dead_lettered") || !strings.Contains(r.stdout, "attempts of") {
		t.Fatalf("updates get: %s", r.stdout)
	}
	golden(t, n, "updates-get", r)

	// Search: one page with a cursor, then --all following nextCursor.
	r = e.must(exitOK, "support", "", "deliveries", "search", "--email", "pat@example.com", "--status", "delivered", "--limit", "2")
	if strings.Count(r.stdout, "\n") != 3 || !strings.Contains(r.stderr, "--cursor") {
		t.Fatalf("one page of 2: %q %q", r.stdout, r.stderr)
	}
	r = e.must(exitOK, "support", "", "deliveries", "search", "--email", "pat@example.com", "--status", "delivered", "--limit", "2", "--all", "-o", "json")
	var all page
	if err := json.Unmarshal([]byte(r.stdout), &all); err != nil || len(all.Deliveries) != 3 || all.NextCursor != "" {
		t.Fatalf("--all: %v %s", err, r.stdout)
	}
	goldenRows(t, n, "deliveries-search-all", e.must(exitOK, "support", "", "deliveries", "search", "--email", "pat@example.com", "--since", "1h", "--limit", "2", "--all"))
	// A key that may list destinations (here admin) sees their names instead of their IDs.
	e.keys["admin"] = cliAdminKey
	r = e.must(exitOK, "admin", "", "deliveries", "search", "--email", "pat@example.com", "--destination", "nps follow-up")
	if !strings.Contains(r.stdout, "nps follow-up") || strings.Contains(r.stdout, "bad request") {
		t.Fatalf("names: %s", r.stdout)
	}
	goldenRows(t, n, "deliveries-search-names", r)
	golden(t, n, "deliveries-search-none", e.must(exitOK, "support", "", "deliveries", "search", "--email", "nobody@example.com"))

	// Dead letters: list, a replay refused without confirmation, then confirmed.
	goldenRows(t, n, "dead-letters-list", e.must(exitOK, "support", "", "dead-letters", "list", "--destination", badDest.ID))
	golden(t, n, "dead-letters-replay-unconfirmed", e.must(exitUsage, "support", "no\n", "dead-letters", "replay", "--destination", badDest.ID, "--reason", "client_error"))
	if dl, _ := support.DeadLetters(ctx, client.DeadLetterQuery{DestinationID: badDest.ID}); len(dl.Deliveries) != 3 {
		t.Fatalf("an unconfirmed replay changed something: %d dead letters left", len(dl.Deliveries))
	}
	e.sim.Script("WF_BAD") // answers 200 again
	golden(t, n, "dead-letters-replay-one", e.must(exitOK, "support", "", "dead-letters", "replay", "--id", badOf[0], "--yes"))
	goldenRows(t, n, "dead-letters-replay-confirmed", e.must(exitOK, "support", "yes\n", "dead-letters", "replay", "--destination", badDest.ID))
	e.await("the replayed deliveries delivered", func() bool {
		dv, err := support.SearchDeliveries(ctx, client.DeliveryQuery{DestinationID: badDest.ID, Status: client.StatusDelivered})
		return err == nil && len(dv.Deliveries) == 3
	})

	// A dead letter older than a delivered update of the same profile is skipped (order per
	// profile) unless --force: two more updates of pat dead-lettered, the newer one replayed.
	e.sim.Script("WF_BAD", simulator.Step{Status: 400}, simulator.Step{Status: 400})
	later := ingestPat(2)
	e.await("two more dead letters, and their updates delivered to nps", func() bool {
		dl, err := support.DeadLetters(ctx, client.DeadLetterQuery{DestinationID: badDest.ID})
		dv, err2 := support.SearchDeliveries(ctx, client.DeliveryQuery{Status: client.StatusDelivered, Identity: "pat@example.com"})
		return err == nil && err2 == nil && len(dl.Deliveries) == 2 && len(dv.Deliveries) == 3+5 // bad request's 3 replayed, nps 5
	})
	var laterBad []string
	for _, u := range later {
		n.name("update")(u)
		v, err := support.GetUpdate(ctx, u)
		if err != nil || len(v.Deliveries) != 2 {
			t.Fatalf("update %s: %v %+v", u, err, v)
		}
		for _, d := range v.Deliveries {
			if d.DestinationID == badDest.ID {
				n.name("dlv")(d.DeliveryID)
				laterBad = append(laterBad, d.DeliveryID)
			}
		}
	}
	e.must(exitOK, "support", "", "dead-letters", "replay", "--id", laterBad[1], "--yes")
	e.await("the newer update replayed and delivered", func() bool {
		dv, err := support.SearchDeliveries(ctx, client.DeliveryQuery{DestinationID: badDest.ID, Status: client.StatusDelivered})
		return err == nil && len(dv.Deliveries) == 4
	})
	golden(t, n, "dead-letters-replay-skipped", e.must(exitOK, "support", "", "dead-letters", "replay", "--id", laterBad[0], "--yes"))
	if dl, _ := support.DeadLetters(ctx, client.DeadLetterQuery{DestinationID: badDest.ID}); len(dl.Deliveries) != 1 {
		t.Fatalf("a skipped replay changed something: %d dead letters left, want 1", len(dl.Deliveries))
	}
	golden(t, n, "dead-letters-replay-forced", e.must(exitOK, "support", "", "dead-letters", "replay", "--id", laterBad[0], "--yes", "--force"))
	e.await("the forced replay delivered", func() bool {
		dv, err := support.SearchDeliveries(ctx, client.DeliveryQuery{DestinationID: badDest.ID, Status: client.StatusDelivered})
		return err == nil && len(dv.Deliveries) == 5
	})

	// Figures and alerts (this node has no GET /v1/alerts yet: the circuits are shown).
	r = e.must(exitOK, "operator", "", "stats", "nps follow-up", "--window", "1h")
	if !strings.Contains(r.stdout, "delivered 5") {
		t.Fatalf("stats: %s", r.stdout)
	}
	golden(t, n, "stats", r)
	r = e.must(exitOK, "support", "", "stats", badDest.ID, "-o", "json")
	var st client.DestinationStats
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.DestinationID != badDest.ID || st.Window != "24h" {
		t.Fatalf("stats -o json: %v %s", err, r.stdout)
	}
	// A survey-watch notification channel's figures, by its ID.
	ch := e.createChannel("cli hook")
	r = e.must(exitOK, "support", "", "stats", ch, "-o", "json")
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.DestinationID != ch || st.Received != 0 || st.Circuit.State != "closed" {
		t.Fatalf("stats of a channel -o json: %v %s", err, r.stdout)
	}
	if r = e.must(exitOK, "operator", "", "stats", ch, "--window", "1h"); !strings.Contains(r.stdout, ch) || !strings.Contains(r.stdout, "channel") {
		t.Fatalf("stats of a channel: %s", r.stdout)
	}
	e.must(exitNotFound, "support", "", "stats", "nch_00000000-0000-7000-8000-000000000000")
	golden(t, n, "alerts-list", e.must(exitOK, "operator", "", "alerts", "list"))

	// Delete asks first.
	golden(t, n, "destinations-delete-unconfirmed", e.must(exitUsage, "operator", "", "destinations", "delete", "bad request"))
	golden(t, n, "destinations-delete", e.must(exitOK, "operator", "", "destinations", "delete", "bad request", "--yes"))
	e.must(exitNotFound, "operator", "", "destinations", "get", badDest.ID)

	// No secret was ever printed: not the destinations' tokens, not the API keys.
	for _, secret := range []string{npsToken, badToken, e.keys["operator"], e.keys["support"], cliAdminKey} {
		if strings.Contains(e.outputs.String(), secret) {
			t.Errorf("a command printed the secret %q", secret)
		}
	}
}
