//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx" for creating and dropping databases

	"github.com/qgate/qgate/bench"
	"github.com/qgate/qgate/internal/store"
)

// stackConfig is what the delivery scenarios share: which qgate, which store, the broker's
// retention and qgate's extra environment.
type stackConfig struct {
	bin       string
	dir       string // the run's temp dir (created by the caller)
	retention int64
	postgres  bool   // store on a fresh PostgreSQL database, else SQLite in the data dir
	pgURL     string // admin URL used to CREATE/DROP the fresh database
	env       []string
	// cpuprofile, when set, makes qgate serve its profiler on a loopback port, and
	// profileQgate writes a CPU profile of qgate to this file.
	cpuprofile string
}

// stack is one run's processes: broker, qgate serve, and what qbench created in them.
type stack struct {
	cfg       stackConfig
	broker    *proc
	serve     *proc
	base      string // http://127.0.0.1:port of qgate
	adminKey  string
	ingestKey string
	opKey     string
	dataDir   string
	dbURL     string // fresh PostgreSQL database URL ("" on SQLite)
	dropDB    func()
	debugAddr string // qgate's profiler listener (QGATE_DEBUG_ADDR), when cfg.cpuprofile is set
}

func (s *stack) storeName() string {
	if s.cfg.postgres {
		return "postgres"
	}
	return "sqlite"
}

// buildQgate returns bin, or builds ./cmd/qgate into dir when bin is empty.
func buildQgate(ctx context.Context, bin, dir string, stderr io.Writer) (string, error) {
	if bin != "" {
		return bin, nil
	}
	bin = filepath.Join(dir, "qgate")
	fmt.Fprintln(stderr, "qbench: building qgate")
	bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(bctx, "go", "build", "-o", bin, "github.com/qgate/qgate/cmd/qgate")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build qgate: %w", err)
	}
	return bin, nil
}

// startStack starts the broker and qgate serve (on a fresh database when postgres) and creates
// an ingest and an operator key. stop undoes everything it did.
func startStack(ctx context.Context, cfg stackConfig) (*stack, error) {
	s := &stack{cfg: cfg, dropDB: func() {}}
	if cfg.postgres {
		dbURL, drop, err := freshDatabase(ctx, cfg.pgURL)
		if err != nil {
			return nil, err
		}
		s.dbURL, s.dropDB = dbURL, drop
	}
	var err error
	var brokerAddr string
	s.broker, brokerAddr, err = startBroker(ctx, cfg.bin, cfg.dir, cfg.retention)
	if err != nil {
		s.stop()
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		s.stop()
		return nil, err
	}
	s.adminKey = randomHex(16)
	s.dataDir = filepath.Join(cfg.dir, "data")
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		s.stop()
		return nil, err
	}
	env := append(withoutQGATE(os.Environ()),
		"QGATE_ADDR="+addr,
		"QGATE_KAFKA_BROKERS="+brokerAddr,
		"QGATE_DATA_DIR="+s.dataDir,
		"QGATE_ADMIN_KEY="+s.adminKey,
		"QGATE_SECRET_KEY="+randomHex(32),
		"QGATE_LOG_LEVEL=warn",
		"QGATE_ALLOW_PRIVATE_NETWORKS=true", // the sink is on 127.0.0.1, over plain http
	)
	if s.dbURL != "" {
		env = append(env, "QGATE_DATABASE_URL="+s.dbURL)
	}
	if cfg.cpuprofile != "" {
		if s.debugAddr, err = freeAddr(); err != nil {
			s.stop()
			return nil, err
		}
		env = append(env, "QGATE_DEBUG_ADDR="+s.debugAddr)
	}
	env = append(env, cfg.env...)
	s.serve, err = startProc("qgate", cfg.bin, []string{"serve"}, env, filepath.Join(cfg.dir, "qgate.log"), nil)
	if err != nil {
		s.stop()
		return nil, err
	}
	s.base = "http://" + addr
	if err := waitReady(ctx, s.base, s.serve); err != nil {
		s.stop()
		return nil, err
	}
	if s.ingestKey, err = createRoleKey(ctx, s.base, s.adminKey, "ingest"); err != nil {
		s.stop()
		return nil, err
	}
	if s.opKey, err = createRoleKey(ctx, s.base, s.adminKey, "operator"); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// stop stops qgate, then the broker, then drops the fresh database.
func (s *stack) stop() {
	if s.serve != nil {
		s.serve.stop(30 * time.Second)
	}
	if s.broker != nil {
		s.broker.stop(10 * time.Second)
	}
	s.dropDB()
}

func (s *stack) died() error {
	if s.serve.exited() || s.broker.exited() {
		return fmt.Errorf("a process died during the run\nqgate log:\n%s\nbroker log:\n%s", s.serve.tail(20), s.broker.tail(20))
	}
	return nil
}

func createRoleKey(ctx context.Context, base, adminKey, role string) (string, error) {
	var out struct {
		Key string `json:"key"`
	}
	if err := callJSON(ctx, http.MethodPost, base+"/v1/keys", adminKey, map[string]string{"name": "bench-" + role, "role": role}, http.StatusCreated, &out); err != nil {
		return "", fmt.Errorf("create %s key: %w", role, err)
	}
	return out.Key, nil
}

// callJSON sends body as JSON and decodes the answer into out when it has status want.
func callJSON(ctx context.Context, method, u, key string, body any, want int, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: status %d: %.300s", method, u, resp.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

// createDestinations registers n destinations on sink, destination k activated for
// bench.Audience(k) and mapping Email, each limited to perMin calls a minute (at most 3000:
// qgate refuses more). It returns their IDs.
func (s *stack) createDestinations(ctx context.Context, sink *bench.Sink, n, perMin int) ([]string, error) {
	ids := make([]string, n)
	for k := range n {
		body := map[string]any{
			"name": fmt.Sprintf("bench-%03d", k), "url": sink.EventURL(fmt.Sprintf("WF_bench%03d", k)),
			"username": "qbench", "apiToken": "qbench-token-" + strconv.Itoa(k),
			"identityMappings":   []any{map[string]any{"source": "Email", "target": "email"}},
			"audiences":          []string{bench.Audience(k)},
			"rateLimitPerMinute": perMin,
		}
		var out struct {
			ID string `json:"id"`
		}
		if err := callJSON(ctx, http.MethodPost, s.base+"/v1/destinations", s.opKey, body, http.StatusCreated, &out); err != nil {
			return nil, fmt.Errorf("create destination %d: %w", k, err)
		}
		ids[k] = out.ID
	}
	return ids, nil
}

// liftRateLimit writes perMin straight into the store for the destinations, bypassing the
// operator API's validation (which caps rateLimitPerMinute at 3000): a benchmark-only way to
// see what the pipeline does when the per-destination limiter is not what bounds it. The
// running node picks the change up through its registry refresh (updated_at moves).
func (s *stack) liftRateLimit(ctx context.Context, ids []string, perMin int) error {
	db, err := store.Open(ctx, s.dbURL, s.dataDir)
	if err != nil {
		return fmt.Errorf("open store to lift rate limits: %w", err)
	}
	defer db.Close()
	for _, id := range ids {
		d, err := db.GetDestination(ctx, id, false)
		if err != nil {
			return fmt.Errorf("lift rate limit of %s: %w", id, err)
		}
		was := d.Version
		d.RateLimitPerMinute = perMin
		d.Version++
		d.UpdatedAt = time.Now()
		if err := db.UpdateDestination(ctx, d, was); err != nil {
			return fmt.Errorf("lift rate limit of %s: %w", id, err)
		}
	}
	return nil
}

// freshDatabase creates database qbench_<random> on the server of adminURL and returns its URL
// and a function that drops it (forcibly: qgate may still hold connections if it was killed).
func freshDatabase(ctx context.Context, adminURL string) (string, func(), error) {
	u, err := url.Parse(adminURL)
	if err != nil {
		return "", nil, fmt.Errorf("-pg-url: %w", err)
	}
	admin, err := sql.Open("pgx", adminURL)
	if err != nil {
		return "", nil, err
	}
	name := "qbench_" + randomHex(6)
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := admin.ExecContext(cctx, "CREATE DATABASE "+name); err != nil {
		admin.Close()
		return "", nil, fmt.Errorf("create database on %s: %w", u.Redacted(), err)
	}
	fresh := *u
	fresh.Path = "/" + name
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.ExecContext(dctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			fmt.Fprintf(os.Stderr, "qbench: drop database %s: %v\n", name, err)
		}
		admin.Close()
	}
	return fresh.String(), drop, nil
}

// metric reads one unlabelled sample (e.g. qgate_deliveries_parked_total) from qgate's
// /metrics; labels, when given, select a labelled series by its exact label text
// (e.g. `status="delivered"`), and every matching series is summed.
func (s *stack) metric(ctx context.Context, name, labels string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.base+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+s.adminKey)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("/metrics: status %d", resp.StatusCode)
	}
	var sum float64
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		rest, ok := strings.CutPrefix(line, name)
		if !ok || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if rest[0] == '{' {
			end := strings.IndexByte(rest, '}')
			if end < 0 || (labels != "" && !strings.Contains(rest[:end], labels)) {
				continue
			}
			rest = rest[end+1:]
		} else if labels != "" {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err == nil {
			sum += v
		}
	}
	return sum, sc.Err()
}

// memStatus reads VmRSS and VmHWM (bytes) of pid from /proc/<pid>/status.
func memStatus(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		f := strings.Fields(v)
		if len(f) < 1 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if k == "VmRSS" {
			rss = n << 10
		} else {
			hwm = n << 10
		}
	}
	return rss, hwm, nil
}

// loadAvg is /proc/loadavg's first three fields.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], ",")
}

// profileQgate starts a CPU profile of qgate serve lasting d and writes it to cfg.cpuprofile;
// the channel yields the outcome once the file is written. Without -qgate-cpuprofile it yields
// nil at once.
func (s *stack) profileQgate(ctx context.Context, d time.Duration) <-chan error {
	return s.profileQgateTo(ctx, 0, d, s.cfg.cpuprofile)
}

// profileQgateTo is profileQgate starting after delay (a scenario's warm-up) and writing file
// (cfg.cpuprofile when the stack has no profiler: then it yields nil at once).
func (s *stack) profileQgateTo(ctx context.Context, delay, d time.Duration, file string) <-chan error {
	done := make(chan error, 1)
	if s.cfg.cpuprofile == "" {
		done <- nil
		return done
	}
	go func() {
		if err := pause(ctx, delay); err != nil {
			done <- err
			return
		}
		url := fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", s.debugAddr, max(1, int(d.Round(time.Second)/time.Second)))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			done <- err
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- fmt.Errorf("qgate profile: %w", err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			done <- fmt.Errorf("qgate profile: %s", resp.Status)
			return
		}
		f, err := os.Create(file)
		if err != nil {
			done <- err
			return
		}
		_, err = io.Copy(f, resp.Body)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		done <- err
	}()
	return done
}
