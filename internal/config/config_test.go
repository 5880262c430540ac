package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestLoadDefaultsAreTheEmbeddedMode(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":8080" || c.DataDir != "./data" || !c.Embedded() || c.DatabaseURL != "" ||
		len(c.AllowedHosts) != 1 || c.AllowedHosts[0] != "*.qualtrics.com" || c.AllowPrivateNetworks || c.MaxBatch != 500 || c.MaxBodyBytes != 5<<20 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLoadReadsEveryContractName(t *testing.T) {
	c, err := Load([]string{"--log-level", "debug"}, env(map[string]string{
		"QGATE_ADDR":                   "127.0.0.1:9000",
		"QGATE_DATA_DIR":               "/tmp/q",
		"QGATE_KAFKA_BROKERS":          "k1:9092, k2:9092",
		"QGATE_DATABASE_URL":           "postgres://u@h/db",
		"QGATE_ADMIN_KEY":              strings.Repeat("a", 32),
		"QGATE_SECRET_KEY":             strings.Repeat("ab", 32),
		"QGATE_ALLOWED_HOSTS":          "*.qualtrics.com, localhost",
		"QGATE_ALLOW_PRIVATE_NETWORKS": "true",
		"QGATE_RETRY_WINDOW":           "1h",
		"QGATE_SHUTDOWN_DRAIN":         "500ms",
		"QGATE_STARTUP_TIMEOUT":        "5s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9000" || c.DataDir != "/tmp/q" || len(c.KafkaBrokers) != 2 || c.KafkaBrokers[1] != "k2:9092" ||
		c.DatabaseURL != "postgres://u@h/db" || len(c.AllowedHosts) != 2 || !c.AllowPrivateNetworks || c.RetryWindow != time.Hour || c.LogLevel != "debug" || c.ShutdownDrain != 500*time.Millisecond ||
		c.StartupTimeout != 5*time.Second {
		t.Fatalf("loaded: %+v", c)
	}
}

func TestLoadNamesEveryBadSetting(t *testing.T) {
	_, err := Load(nil, env(map[string]string{"QGATE_ALLOW_PRIVATE_NETWORKS": "perhaps"}))
	if err == nil || !strings.Contains(err.Error(), "QGATE_ALLOW_PRIVATE_NETWORKS") {
		t.Fatalf("bad boolean: %v", err)
	}
	_, err = Load(nil, env(map[string]string{
		"QGATE_ADDR":            "nonsense",
		"QGATE_KAFKA_BROKERS":   "k1",
		"QGATE_DATABASE_URL":    "mysql://x",
		"QGATE_ADMIN_KEY":       "short",
		"QGATE_ALLOWED_HOSTS":   "https://x.com/",
		"QGATE_SHUTDOWN_DRAIN":  "40s",
		"QGATE_DEBUG_ADDR":      "0.0.0.0:6060",
		"QGATE_STARTUP_TIMEOUT": "0s",
	}))
	for _, name := range []string{"QGATE_ADDR", "QGATE_KAFKA_BROKERS", "QGATE_DATABASE_URL", "QGATE_ADMIN_KEY", "QGATE_ALLOWED_HOSTS", "QGATE_SECRET_KEY", "QGATE_SHUTDOWN_DRAIN", "QGATE_DEBUG_ADDR", "QGATE_STARTUP_TIMEOUT"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestDecodeSecretKey(t *testing.T) {
	for _, ok := range []string{strings.Repeat("0f", 32), "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="} {
		if b, err := DecodeSecretKey(ok); err != nil || len(b) != 32 {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "abc", strings.Repeat("0f", 16), strings.Repeat("zz", 32)} {
		if _, err := DecodeSecretKey(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDebugAddrMustBeLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{
		"127.0.0.1:6060": true, "[::1]:6060": true, "localhost:6060": true,
		":6060": false, "0.0.0.0:6060": false, "10.0.0.5:6060": false, "127.0.0.1": false,
	} {
		c, err := Load(nil, env(map[string]string{"QGATE_DEBUG_ADDR": addr}))
		if ok && (err != nil || c.DebugAddr != addr) {
			t.Errorf("%q refused: %v", addr, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "QGATE_DEBUG_ADDR")) {
			t.Errorf("%q accepted (err %v)", addr, err)
		}
	}
}

func TestStartupTimeoutBounds(t *testing.T) {
	c, err := Load(nil, env(nil))
	if err != nil || c.StartupTimeout != time.Minute {
		t.Fatalf("default: %s, %v", c.StartupTimeout, err)
	}
	for v, ok := range map[string]bool{"1s": true, "90s": true, "1h": true, "0s": false, "500ms": false, "-5s": false, "2h": false, "soon": false} {
		c, err := Load(nil, env(map[string]string{"QGATE_STARTUP_TIMEOUT": v}))
		if ok && err != nil {
			t.Errorf("%q refused: %v", v, err)
		}
		if want, _ := time.ParseDuration(v); ok && c.StartupTimeout != want {
			t.Errorf("%q: loaded as %s", v, c.StartupTimeout)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "QGATE_STARTUP_TIMEOUT")) {
			t.Errorf("%q accepted (err %v)", v, err)
		}
	}
}

// A setting that cannot be read must not hide the others' errors: a bad duration used to
// stop Load before Validate could name a short admin key.
func TestLoadReportsReadAndValidationErrorsAtOnce(t *testing.T) {
	_, err := Load(nil, env(map[string]string{
		"QGATE_RETRY_WINDOW":     "a day",
		"QGATE_KAFKA_PARTITIONS": "many",
		"QGATE_ADMIN_KEY":        "short",
		"QGATE_LOG_LEVEL":        "loud",
	}))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, name := range []string{"QGATE_RETRY_WINDOW", "QGATE_KAFKA_PARTITIONS", "QGATE_ADMIN_KEY", "QGATE_LOG_LEVEL"} {
		if strings.Count(err.Error(), name) != 1 {
			t.Errorf("error names %s %d times, want once: %v", name, strings.Count(err.Error(), name), err)
		}
	}
}

func TestMetricsAddr(t *testing.T) {
	c, err := Load(nil, env(map[string]string{"QGATE_METRICS_ADDR": "127.0.0.1:9090"}))
	if err != nil || c.MetricsAddr != "127.0.0.1:9090" {
		t.Fatalf("%q, %v", c.MetricsAddr, err)
	}
	for _, bad := range []string{"9090", ":8080"} {
		if _, err := Load(nil, env(map[string]string{"QGATE_METRICS_ADDR": bad})); err == nil || !strings.Contains(err.Error(), "QGATE_METRICS_ADDR") {
			t.Errorf("%q accepted (err %v)", bad, err)
		}
	}
}

func TestPrivateNetworksWarns(t *testing.T) {
	c, _ := Load(nil, env(nil))
	if w := c.Warnings(); len(w) != 0 {
		t.Fatalf("default warns: %q", w)
	}
	c, _ = Load(nil, env(map[string]string{"QGATE_ALLOW_PRIVATE_NETWORKS": "true"}))
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], "QGATE_ALLOW_PRIVATE_NETWORKS") {
		t.Fatalf("warnings: %q", w)
	}
}

func TestConsumerFetchWaitDefaultsAndOverride(t *testing.T) {
	embedded, err := Load(nil, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	// The embedded broker answers held fetches when a record arrives, like Kafka: the same long
	// wait keeps an idle node from polling (issue #12).
	if got := embedded.ConsumerFetchWait(); got != 1500*time.Millisecond {
		t.Errorf("embedded broker: fetch wait %s, want 1.5s", got)
	}
	cluster := map[string]string{"QGATE_KAFKA_BROKERS": "k1:9092", "QGATE_SECRET_KEY": strings.Repeat("ab", 32)}
	external, err := Load(nil, env(cluster))
	if err != nil {
		t.Fatal(err)
	}
	// Above kafka-go's 1 s slack, so that a broker slow to answer is not a read timeout.
	if got := external.ConsumerFetchWait(); got != 1500*time.Millisecond {
		t.Errorf("external cluster: fetch wait %s, want 1.5s", got)
	}
	cluster["QGATE_KAFKA_FETCH_WAIT"] = "300ms"
	set, err := Load(nil, env(cluster))
	if err != nil {
		t.Fatal(err)
	}
	if got := set.ConsumerFetchWait(); got != 300*time.Millisecond {
		t.Errorf("QGATE_KAFKA_FETCH_WAIT=300ms: fetch wait %s", got)
	}
	cluster["QGATE_KAFKA_FETCH_WAIT"] = "-1s"
	if _, err := Load(nil, env(cluster)); err == nil || !strings.Contains(err.Error(), "QGATE_KAFKA_FETCH_WAIT") {
		t.Errorf("QGATE_KAFKA_FETCH_WAIT=-1s: %v, want an error naming it", err)
	}
}
