package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sim.json")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadConfig(t *testing.T) {
	tests := []struct {
		name    string
		body    string // "" with path "" means no -config
		noFile  bool
		wantErr string
		wantIDs []string
	}{
		{name: "no config gives demo", noFile: true, wantIDs: []string{"WF_demo"}},
		{name: "valid", body: `{"workflows":[{"id":"WF_a","username":"u","token":"t","ratePerMinute":60},{"id":"WF_b","token":"x"}],"apiTokens":["k"],"perTokenRate":10,"maxRuns":5,"keepBodies":false}`, wantIDs: []string{"WF_a", "WF_b"}},
		{name: "bad json", body: `{"workflows":`, wantErr: "unexpected EOF"},
		{name: "unknown field", body: `{"workflow":[]}`, wantErr: "unknown field"},
		{name: "missing id", body: `{"workflows":[{"token":"t"}]}`, wantErr: "id is required"},
		{name: "missing token", body: `{"workflows":[{"id":"a"}]}`, wantErr: "token is required"},
		{name: "duplicate", body: `{"workflows":[{"id":"a","token":"t"},{"id":"a","token":"t"}]}`, wantErr: "duplicate id"},
		{name: "negative per-token rate", body: `{"perTokenRate":-1}`, wantErr: "perTokenRate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := ""
			if !tt.noFile {
				path = writeFile(t, tt.body)
			}
			fc, err := loadConfig(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var ids []string
			for _, wf := range fc.Workflows {
				ids = append(ids, wf.ID)
			}
			if strings.Join(ids, ",") != strings.Join(tt.wantIDs, ",") {
				t.Errorf("ids = %v, want %v", ids, tt.wantIDs)
			}
		})
	}
	if _, err := loadConfig(filepath.Join(t.TempDir(), "missing.json")); err == nil {
		t.Error("missing file accepted")
	}
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestServe(t *testing.T) {
	cfg := writeFile(t, `{"workflows":[{"id":"WF_a","username":"u","token":"t"}]}`)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	urls := make(chan string, 1)
	code := make(chan int, 1)
	var logs syncBuffer
	go func() {
		code <- serve(ctx, []string{"-addr", "127.0.0.1:0", "-config", cfg, "-rate", "1"}, &logs, func(u string) { urls <- u })
	}()
	var base string
	select {
	case base = <-urls:
	case c := <-code:
		t.Fatalf("exited %d: %s", c, logs.String())
	}

	post := func() int {
		req, _ := http.NewRequest("POST", base+"/events/WF_a?x=1", strings.NewReader(`{"k":"v"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("u:t")))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := post(); c != 200 {
		t.Fatalf("first call: %d", c)
	}
	if c := post(); c != 429 { // -rate 1
		t.Fatalf("second call: %d", c)
	}
	cancel()
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit code %d: %s", c, logs.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no graceful shutdown")
	}
	if !strings.Contains(logs.String(), "/events/WF_a") {
		t.Errorf("logs lack the event URL: %s", logs.String())
	}
}

func TestServeBadFlags(t *testing.T) {
	for _, args := range [][]string{{"-nope"}, {"-rate", "0"}, {"-config", "/does/not/exist"}, {"-addr", "256.0.0.1:99999"}} {
		var logs syncBuffer
		if c := serve(t.Context(), args, &logs, nil); c == 0 {
			t.Errorf("%v: exit 0", args)
		}
	}
}
