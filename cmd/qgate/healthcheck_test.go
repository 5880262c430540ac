package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealthcheck: exit 0 only when /readyz answers 200; 1 on 503 or no answer; 2 on a bad address.
func TestHealthcheck(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		w.Write([]byte(`{"ready":` + map[bool]string{true: "true", false: "false"}[ready] + `}`))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	env := func(k string) string {
		if k == "QGATE_ADDR" {
			return addr
		}
		return ""
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"healthcheck"}, env, &out, &errOut); code != 0 {
		t.Fatalf("ready: exit %d (%s)", code, errOut.String())
	}
	ready = false
	if code := run([]string{"healthcheck"}, env, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "503") {
		t.Fatalf("not ready: exit %d, stderr %q", code, errOut.String())
	}
	srv.Close()
	if code := run([]string{"healthcheck"}, env, &out, &errOut); code != 1 {
		t.Fatalf("nobody listening: exit %d", code)
	}
	if code := run([]string{"healthcheck", "--addr", "no-port"}, env, &out, &errOut); code != 2 {
		t.Fatalf("bad address: exit %d", code)
	}
}
