package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/qgate/qgate/internal/app"
	"github.com/qgate/qgate/internal/config"
)

const testAdminKey = "test-admin-key-0123456789abcdef"

// node is one qgate started in-process for a test, with its logs captured.
type node struct {
	t    *testing.T
	app  *app.App
	base string
	logs *logBuffer
}

type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}
func (l *logBuffer) Sync() error { return nil }
func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startNode starts qgate with the embedded defaults on a loopback port; mutate adjusts the config.
func startNode(t *testing.T, mutate func(*config.Config)) *node {
	t.Helper()
	return startNodeWith(t, mutate, app.Options{})
}

// startNodeWith is startNode with app options.
func startNodeWith(t *testing.T, mutate func(*config.Config), opts app.Options) *node {
	t.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = t.TempDir()
	cfg.AdminKey = testAdminKey
	cfg.Partitions = 4
	cfg.ProduceTimeout = 3 * time.Second
	cfg.LogLevel = "debug"
	if mutate != nil {
		mutate(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &logBuffer{}
	enc := zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig())
	log := zap.New(zapcore.NewCore(enc, logs, zapcore.DebugLevel))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := app.NewWith(ctx, cfg, log, opts)
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
	})
	return &node{t: t, app: a, base: "http://" + addr, logs: logs}
}

// do sends a request with an optional bearer key and JSON body and returns status and body.
func (n *node) do(method, path, key string, body any) (int, []byte, http.Header) {
	n.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(b)
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			n.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, n.base+path, r)
	if err != nil {
		n.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	return resp.StatusCode, out, resp.Header
}

// createKey makes an API key of role through the admin API.
func (n *node) createKey(role string) string {
	n.t.Helper()
	status, body, _ := n.do("POST", "/v1/keys", testAdminKey, map[string]string{"name": role + " key", "role": role})
	if status != http.StatusCreated {
		n.t.Fatalf("create %s key: %d %s", role, status, body)
	}
	var k struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(body, &k); err != nil || k.Key == "" {
		n.t.Fatalf("create key: %v %s", err, body)
	}
	return k.Key
}

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}
