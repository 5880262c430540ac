package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve warns on standard error when SSRF protection is off, before anything else can fail.
// Here the data dir is under a regular file, so the node cannot start and serve returns.
func TestServeWarnsWhenPrivateNetworksAreAllowed(t *testing.T) {
	file := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"QGATE_ADDR": "127.0.0.1:0", "QGATE_DATA_DIR": filepath.Join(file, "data"),
		"QGATE_ALLOW_PRIVATE_NETWORKS": "true", "QGATE_STARTUP_TIMEOUT": "1s", "QGATE_LOG_LEVEL": "error",
	}
	var stdout, stderr bytes.Buffer
	code := run([]string{"serve"}, func(k string) string { return env[k] }, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "qgate: warning: QGATE_ALLOW_PRIVATE_NETWORKS=true") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}

	delete(env, "QGATE_ALLOW_PRIVATE_NETWORKS")
	stderr.Reset()
	if code := run([]string{"serve"}, func(k string) string { return env[k] }, &stdout, &stderr); code != 1 || strings.Contains(stderr.String(), "warning") {
		t.Fatalf("without the setting: exit %d, stderr:\n%s", code, stderr.String())
	}
}

// A bad duration no longer hides the other bad settings: serve names them all and exits 2.
func TestServeReportsEveryBadSetting(t *testing.T) {
	env := map[string]string{"QGATE_RETRY_WINDOW": "a day", "QGATE_ADMIN_KEY": "short", "QGATE_ADDR": "nonsense"}
	var stdout, stderr bytes.Buffer
	code := run([]string{"serve"}, func(k string) string { return env[k] }, &stdout, &stderr)
	for _, name := range []string{"QGATE_RETRY_WINDOW", "QGATE_ADMIN_KEY", "QGATE_ADDR"} {
		if code != 2 || !strings.Contains(stderr.String(), name) {
			t.Errorf("exit %d; stderr does not name %s:\n%s", code, name, stderr.String())
		}
	}
}
