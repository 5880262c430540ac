//go:build linux

package e2e

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startupVars are the settings of a `qgate serve` in the start-up tests (later ones win).
func startupVars(dataDir string, extra ...string) []string {
	return append([]string{
		"QGATE_ADDR=127.0.0.1:0",
		"QGATE_DATA_DIR=" + dataDir,
		"QGATE_SECRET_KEY=" + randomHex(32),
		"QGATE_LOG_LEVEL=warn",
		"QGATE_KAFKA_PARTITIONS=2",
	}, extra...)
}

// TestStartupFailsWithTheCause: qgate serve whose Kafka or PostgreSQL does not answer (a closed
// port), or whose data dir cannot be created (a path under a regular file), exits 1 within
// QGATE_STARTUP_TIMEOUT (plus a margin for the process itself), with one plain line on stderr
// and one JSON error line naming the cause — no panic, no goroutine dump. What can come up
// (Kafka, PostgreSQL) is waited for, each try logged; what cannot (the data dir) fails at once.
func TestStartupFailsWithTheCause(t *testing.T) {
	skipShort(t)
	const bound = 3 * time.Second
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	if err := os.WriteFile(file, []byte("not a directory\n"), 0o600); err != nil {
		fatal(t, err)
	}
	kafkaAddr, pgAddr := freeAddr(t), freeAddr(t) // nothing listens there: connection refused
	for _, tc := range []struct {
		name    string
		vars    []string
		cause   []string // each must be in the cause
		waits   string   // the warn line of each failed try; "" when nothing is waited for
		atLeast time.Duration
	}{
		{
			name:  "kafka unreachable",
			vars:  startupVars(filepath.Join(dir, "k"), "QGATE_KAFKA_BROKERS="+kafkaAddr, "QGATE_STARTUP_TIMEOUT="+bound.String()),
			cause: []string{"Kafka at " + kafkaAddr + " did not answer within QGATE_STARTUP_TIMEOUT", "connection refused"},
			waits: "start-up: waiting for Kafka at " + kafkaAddr, atLeast: bound,
		},
		{
			name:  "postgres unreachable",
			vars:  startupVars(filepath.Join(dir, "p"), "QGATE_DATABASE_URL=postgres://postgres@"+pgAddr+"/test?sslmode=disable", "QGATE_STARTUP_TIMEOUT="+bound.String()),
			cause: []string{"the store (PostgreSQL) did not answer within QGATE_STARTUP_TIMEOUT", pgAddr, "connection refused"},
			waits: "start-up: waiting for the store (PostgreSQL)", atLeast: bound,
		},
		{
			name:  "data dir under a regular file",
			vars:  startupVars(filepath.Join(file, "data"), "QGATE_STARTUP_TIMEOUT="+bound.String()),
			cause: []string{"QGATE_DATA_DIR=" + filepath.Join(file, "data"), "not a directory"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			p := startProc(t, dir, strings.ReplaceAll(tc.name, " ", "-"), []string{"serve"}, append(cleanEnv(), tc.vars...))
			code, ok := p.waitExit(bound + 10*time.Second)
			took := time.Since(start)
			if !ok {
				fatalf(t, "still running %s after start (bound %s):\n%s", took.Round(time.Millisecond), bound, p.tail(20))
			}
			out := p.log()
			if code != 1 {
				errorf(t, "exit code %d, want 1", code)
			}
			if took < tc.atLeast {
				errorf(t, "exited after %s: it did not wait the %s bound", took.Round(time.Millisecond), tc.atLeast)
			}
			for _, bad := range []string{"panic", "goroutine ", "SIGSEGV", "nil pointer"} {
				if strings.Contains(out, bad) {
					errorf(t, "output contains %q:\n%s", bad, out)
				}
			}
			var plain, jsonErr []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				switch {
				case strings.HasPrefix(line, "qgate: could not start: "):
					plain = append(plain, line)
				case strings.Contains(line, `"msg":"qgate could not start"`):
					jsonErr = append(jsonErr, line)
				}
			}
			if len(plain) != 1 || len(jsonErr) != 1 {
				fatalf(t, "want one plain stderr line and one JSON error line, got %d and %d:\n%s", len(plain), len(jsonErr), out)
			}
			for _, want := range tc.cause {
				if !strings.Contains(plain[0], want) || !strings.Contains(jsonErr[0], want) {
					errorf(t, "cause lacks %q:\n%s\n%s", want, plain[0], jsonErr[0])
				}
			}
			if tc.waits != "" && strings.Count(out, tc.waits) < 2 {
				errorf(t, "want the failed tries logged (%q), got:\n%s", tc.waits, out)
			}
			if tc.waits == "" && strings.Contains(out, "start-up: waiting for") {
				errorf(t, "waited for something that waiting cannot cure:\n%s", out)
			}
		})
	}
}

// TestStartupWaitsForTheStoreAndKafka: qgate serve started before its PostgreSQL and its Kafka
// answer waits for them (logging each failed try), and once a proxy to the real PostgreSQL and
// the broker come up on the configured addresses, it starts and serves: /readyz answers 200 and
// an API key is created through it.
func TestStartupWaitsForTheStoreAndKafka(t *testing.T) {
	dbURL := pgSchema(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		fatal(t, err)
	}
	pgTarget := u.Host
	pgAddr, brokerAddr := freeAddr(t), freeAddr(t)
	u.Host = pgAddr
	e := &env{t: t, dir: t.TempDir(), adminKey: "e2e-admin-" + randomHex(16), secretKey: randomHex(32), http: &http.Client{Timeout: 15 * time.Second}}
	addr := freeAddr(t)
	n := &node{e: e, name: "serve", addr: addr, base: "http://" + addr}
	n.vars = []string{
		"QGATE_ADDR=" + addr, "QGATE_DATA_DIR=" + filepath.Join(e.dir, "data"), "QGATE_ADMIN_KEY=" + e.adminKey,
		"QGATE_SECRET_KEY=" + e.secretKey, "QGATE_LOG_LEVEL=warn", "QGATE_KAFKA_PARTITIONS=2",
		"QGATE_DATABASE_URL=" + u.String(), "QGATE_KAFKA_BROKERS=" + brokerAddr, "QGATE_STARTUP_TIMEOUT=60s",
	}
	n.p = startProc(t, e.dir, "serve", []string{"serve"}, append(cleanEnv(), n.vars...))

	for _, waits := range []string{"start-up: waiting for the store (PostgreSQL)", "start-up: waiting for Kafka at " + brokerAddr} {
		for deadline := time.Now().Add(20 * time.Second); strings.Count(n.p.log(), waits) < 2; time.Sleep(20 * time.Millisecond) {
			if n.p.exited() || time.Now().After(deadline) {
				fatalf(t, "no two tries logged as %q (exited: %v):\n%s", waits, n.p.exited(), n.p.tail(20))
			}
		}
	}
	startProxy(t, pgAddr, pgTarget)
	broker := startProc(t, e.dir, "broker", []string{"broker", "--addr", brokerAddr}, cleanEnv())
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(broker.log(), "broker "+brokerAddr+"\n"); time.Sleep(20 * time.Millisecond) {
		if broker.exited() || time.Now().After(deadline) {
			fatalf(t, "qgate broker did not start on %s:\n%s", brokerAddr, broker.tail(20))
		}
	}
	n.waitReady(30 * time.Second)
	if key := n.createKey("ingest"); key == "" {
		fatal(t, "no key created")
	}
	if out := n.p.log(); strings.Contains(out, "could not start") || strings.Contains(out, "panic") {
		errorf(t, "log:\n%s", out)
	}
}
