//go:build linux

package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"

	"github.com/qgate/qgate/internal/simulator"
)

// qgateBin is the qgate binary TestMain builds once for every test.
var qgateBin string

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run() // every test skips itself
	}
	dir, err := os.MkdirTemp("", "qgate-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	root, err := moduleRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	qgateBin = filepath.Join(dir, "qgate")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", qgateBin, "./cmd/qgate")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: go build ./cmd/qgate: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	killAll() // a safety net: every test's cleanup already killed its processes
	return code
}

// moduleRoot is the directory of the go.mod this package belongs to.
func moduleRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside a module")
	}
	return filepath.Dir(mod), nil
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("process-level test: skipped in -short mode")
	}
}

// ---- processes ----

var (
	procsMu sync.Mutex
	procs   = map[*proc]struct{}{}
	procSeq int
)

func killAll() {
	procsMu.Lock()
	all := make([]*proc, 0, len(procs))
	for p := range procs {
		all = append(all, p)
	}
	procsMu.Unlock()
	for _, p := range all {
		p.kill()
	}
}

// proc is a qgate process in its own process group; stdout and stderr go to logPath.
type proc struct {
	name    string
	logPath string
	cmd     *exec.Cmd
	done    chan struct{}
	state   *os.ProcessState // set once done is closed
}

// startProc starts qgate args with env in its own process group. Cleanup kills the whole group
// (also when the test panics) and prints the log's tail when the test failed.
func startProc(t *testing.T, dir, name string, args, env []string) *proc {
	t.Helper()
	procsMu.Lock()
	procSeq++
	logPath := filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, procSeq))
	procsMu.Unlock()
	f, err := os.Create(logPath)
	if err != nil {
		fatal(t, err)
	}
	cmd := exec.Command(qgateBin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	// Own process group (so a kill reaches everything it started); the kernel kills it if this
	// test binary dies without cleaning up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		fatalf(t, "start %s: %v", name, err)
	}
	p := &proc{name: name, logPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		p.state = cmd.ProcessState
		f.Close()
		close(p.done)
	}()
	procsMu.Lock()
	procs[p] = struct{}{}
	procsMu.Unlock()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("---- %s (pid %d) log %s, last lines:\n%s", name, cmd.Process.Pid, logPath, p.tail(60))
		}
	})
	return p
}

// signal sends sig to the process group.
func (p *proc) signal(sig syscall.Signal) error { return syscall.Kill(-p.cmd.Process.Pid, sig) }

// kill SIGKILLs the process group and waits (bounded) for the process to be reaped.
func (p *proc) kill() {
	if !p.exited() {
		_ = p.signal(syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
		}
	}
	procsMu.Lock()
	delete(procs, p)
	procsMu.Unlock()
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// waitExit waits up to d for the process to end and returns its exit code (-1: signalled).
func (p *proc) waitExit(d time.Duration) (code int, ok bool) {
	select {
	case <-p.done:
		return p.state.ExitCode(), true
	case <-time.After(d):
		return 0, false
	}
}

func (p *proc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *proc) tail(n int) string {
	lines := strings.Split(strings.TrimRight(p.log(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// ---- the environment of one test ----

// env is one test's world: a temp dir, a broker process, the in-process Qualtrics simulator and
// the settings every qgate node of the test shares.
type env struct {
	t          *testing.T
	dir        string
	broker     *proc
	brokerAddr string
	sim        *simulator.Simulator
	simURL     string
	adminKey   string
	secretKey  string
	http       *http.Client

	// API keys made through the admin API of the first node.
	ingestKey, operatorKey, supportKey string
}

func newEnv(t *testing.T, simCfg simulator.Config) *env {
	t.Helper()
	skipShort(t)
	summarizeFailures(t)
	e := &env{
		t:         t,
		dir:       t.TempDir(),
		adminKey:  "e2e-admin-" + randomHex(16),
		secretKey: randomHex(32),
		http:      &http.Client{Timeout: 15 * time.Second},
	}
	sim, srv, err := simulator.Start(simCfg)
	if err != nil {
		fatal(t, err)
	}
	t.Cleanup(func() { srv.Close() })
	e.sim, e.simURL = sim, srv.URL
	e.startBroker()
	return e
}

// startBroker runs `qgate broker` on a free loopback port and waits for its "broker <addr>" line.
func (e *env) startBroker() {
	e.t.Helper()
	if e.useCluster() { // cluster mode (cluster_harness_test.go): no qgate broker
		return
	}
	addr := freeAddr(e.t)
	p := startProc(e.t, e.dir, "broker", []string{"broker", "--addr", addr}, cleanEnv())
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(p.log(), "broker "+addr+"\n") {
		if p.exited() {
			fatalf(e.t, "qgate broker exited before listening:\n%s", p.tail(20))
		}
		if time.Now().After(deadline) {
			fatalf(e.t, "qgate broker did not print its address within 20s:\n%s", p.tail(20))
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.broker, e.brokerAddr = p, addr
}

// node is one `qgate serve` process; restart starts it again with the same settings.
type node struct {
	e    *env
	name string
	addr string
	base string
	vars []string
	p    *proc
}

// startNode starts `qgate serve` with its own data dir (SQLite when dbURL is empty) and waits
// for /readyz. extra are more KEY=VALUE settings (later ones win).
func (e *env) startNode(name, dbURL string, extra ...string) *node {
	e.t.Helper()
	dataDir := filepath.Join(e.dir, name+"-data")
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		fatal(e.t, err)
	}
	addr := freeAddr(e.t)
	vars := []string{
		"QGATE_ADDR=" + addr,
		"QGATE_KAFKA_BROKERS=" + e.brokerAddr,
		"QGATE_DATA_DIR=" + dataDir,
		"QGATE_ADMIN_KEY=" + e.adminKey,
		"QGATE_SECRET_KEY=" + e.secretKey,
		"QGATE_ALLOW_PRIVATE_NETWORKS=true",
		"QGATE_LOG_LEVEL=warn",
		"QGATE_RETRY_BASE_DELAY=50ms",
		"QGATE_RETRY_MAX_DELAY=500ms",
		"QGATE_BREAKER_TIMEOUT=1s",
		"QGATE_PRODUCE_TIMEOUT=2s",
		"QGATE_KAFKA_PARTITIONS=6",
	}
	vars = append(vars, e.kafkaVars()...)
	if dbURL != "" {
		vars = append(vars, "QGATE_DATABASE_URL="+dbURL)
	}
	vars = append(vars, extra...)
	n := &node{e: e, name: name, addr: addr, base: "http://" + addr, vars: vars}
	n.start()
	if e.ingestKey == "" {
		e.ingestKey = n.createKey("ingest")
		e.operatorKey = n.createKey("operator")
		e.supportKey = n.createKey("support")
	}
	return n
}

func (n *node) start() {
	n.e.t.Helper()
	n.p = startProc(n.e.t, n.e.dir, n.name, []string{"serve"}, append(cleanEnv(), n.vars...))
	n.waitReady(60 * time.Second)
}

// restart starts the node again (same address, data dir, database and broker) after it ended.
func (n *node) restart() {
	n.e.t.Helper()
	if !n.p.exited() {
		fatalf(n.e.t, "restart %s: the previous process is still running", n.name)
	}
	n.start()
}

// waitReady polls /readyz until 200, the process exits or within passes.
func (n *node) waitReady(within time.Duration) {
	n.e.t.Helper()
	c := &http.Client{Timeout: 3 * time.Second}
	deadline := time.Now().Add(within)
	for {
		resp, err := c.Get(n.base + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if n.p.exited() {
			fatalf(n.e.t, "%s exited before ready (%v):\n%s", n.name, n.p.state, n.p.tail(30))
		}
		if time.Now().After(deadline) {
			fatalf(n.e.t, "%s not ready within %s:\n%s", n.name, within, n.p.tail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// do sends a JSON request with a bearer key. It never calls t.Fatal, so goroutines may use it.
func (n *node) do(ctx context.Context, c *http.Client, method, path, key string, body []byte) (int, []byte, http.Header, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, n.base+path, r)
	if err != nil {
		return 0, nil, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return resp.StatusCode, out, resp.Header, fmt.Errorf("read response: %w", err)
	}
	return resp.StatusCode, out, resp.Header, nil
}

// must is do for the test goroutine: any transport error fails the test.
func (n *node) must(method, path, key string, body any) (int, []byte) {
	n.e.t.Helper()
	var b []byte
	if body != nil {
		var err error
		if b, err = json.Marshal(body); err != nil {
			fatal(n.e.t, err)
		}
	}
	status, out, _, err := n.do(context.Background(), n.e.http, method, path, key, b)
	if err != nil {
		fatalf(n.e.t, "%s %s on %s: %v", method, path, n.name, err)
	}
	return status, out
}

func (n *node) createKey(role string) string {
	n.e.t.Helper()
	status, body := n.must("POST", "/v1/keys", n.e.adminKey, map[string]string{"name": "e2e " + role, "role": role})
	var k struct {
		Key string `json:"key"`
	}
	if status != http.StatusCreated || json.Unmarshal(body, &k) != nil || k.Key == "" {
		fatalf(n.e.t, "create %s key: %d %s", role, status, body)
	}
	return k.Key
}

// destination registers a destination for a new simulator workflow (wf tunes the workflow) and
// returns its ID and workflow ID. spec overrides fields of the request.
func (n *node) destination(name string, wf simulator.Workflow, spec map[string]any) (id, workflow string) {
	n.e.t.Helper()
	wf.ID, wf.Username, wf.Token = "WF_"+name, "user-"+name, "token-"+name+"-secret"
	n.e.sim.AddWorkflow(wf)
	body := map[string]any{
		"name": name, "url": n.e.sim.EventURL(n.e.simURL, wf.ID), "username": wf.Username, "apiToken": wf.Token,
		"identityMappings": []any{map[string]any{"source": "Email", "target": "email"}},
		"audiences":        []any{"aud-" + name},
	}
	for k, v := range spec {
		body[k] = v
	}
	status, resp := n.must("POST", "/v1/destinations", n.e.operatorKey, body)
	var d struct{ ID string }
	if status != http.StatusCreated || json.Unmarshal(resp, &d) != nil || d.ID == "" {
		fatalf(n.e.t, "create destination %s: %d %s", name, status, resp)
	}
	return d.ID, wf.ID
}

// ---- helpers ----

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fatal(t, err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// cleanEnv is this process's environment without QGATE_* settings, so only the test's reach qgate.
func cleanEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "QGATE_") })
}

const defaultTestDatabaseURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

// pgSchema creates a fresh schema on the test PostgreSQL (QGATE_TEST_DATABASE_URL, else the
// local default) and returns a URL whose search_path is that schema; the schema is dropped at
// cleanup. The test skips, saying so, when QGATE_TEST_DATABASE_URL is unset and the local default
// does not answer; it fails when QGATE_TEST_DATABASE_URL is set (as in CI) and does not answer.
// Call it before starting processes, so that its cleanup runs after theirs.
func pgSchema(t *testing.T) string {
	t.Helper()
	skipShort(t)
	base := os.Getenv("QGATE_TEST_DATABASE_URL")
	explicit := base != ""
	if !explicit {
		base = defaultTestDatabaseURL
	}
	u, err := url.Parse(base)
	if err != nil {
		fatalf(t, "QGATE_TEST_DATABASE_URL: %v", err)
	}
	db, err := sql.Open("pgx", base)
	if err != nil {
		fatalf(t, "open PostgreSQL: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		if explicit {
			fatalf(t, "QGATE_TEST_DATABASE_URL is set but PostgreSQL does not answer at %s: %v", u.Redacted(), err)
		}
		t.Skipf("PostgreSQL unreachable at %s (%v): set QGATE_TEST_DATABASE_URL to a reachable database to run this test", u.Redacted(), err)
	}
	schema := "qgate_e2e_" + randomHex(6)
	if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		db.Close()
		fatalf(t, "create schema: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			errorf(t, "drop schema %s: %v", schema, err)
		}
		db.Close()
	})
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}
