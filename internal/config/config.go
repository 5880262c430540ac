// Package config owns qgate's configuration: one struct, its defaults, loading from the
// environment and flags, and validation at start with messages an operator can act on.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Config is everything `qgate serve` needs. It is loaded once in run() and passed down.
type Config struct {
	Addr                 string   // QGATE_ADDR
	DataDir              string   // QGATE_DATA_DIR
	KafkaBrokers         []string // QGATE_KAFKA_BROKERS; empty: embedded broker
	DatabaseURL          string   // QGATE_DATABASE_URL; empty: SQLite in DataDir
	AdminKey             string   // QGATE_ADMIN_KEY
	SecretKey            string   // QGATE_SECRET_KEY (base64 or hex, 32 bytes)
	AllowedHosts         []string // QGATE_ALLOWED_HOSTS
	AllowPrivateNetworks bool     // QGATE_ALLOW_PRIVATE_NETWORKS

	// Kafka topics and their partition count when qgate creates them.
	ProfileTopic      string        // QGATE_PROFILE_TOPIC
	DeliveryTopic     string        // QGATE_DELIVERY_TOPIC
	Partitions        int           // QGATE_KAFKA_PARTITIONS
	ReplicationFactor int           // QGATE_KAFKA_REPLICATION_FACTOR
	ProduceTimeout    time.Duration // QGATE_PRODUCE_TIMEOUT: how long ingest waits for acks=all
	// FetchWait is how long a broker may hold a consumer's fetch while it has no new data;
	// 0 (the default): see ConsumerFetchWait.
	FetchWait time.Duration // QGATE_KAFKA_FETCH_WAIT

	// Ingest limits.
	MaxBodyBytes int64 // QGATE_MAX_BODY_BYTES (default 5 MB)
	MaxBatch     int   // QGATE_MAX_BATCH (default 500)

	// Delivery.
	DeliveryTimeout time.Duration // QGATE_DELIVERY_TIMEOUT: one POST to a destination
	RetryWindow     time.Duration // QGATE_RETRY_WINDOW: retry until then, then dead-letter
	RetryBaseDelay  time.Duration // QGATE_RETRY_BASE_DELAY: first retry's backoff ceiling
	RetryMaxDelay   time.Duration // QGATE_RETRY_MAX_DELAY: any retry's backoff ceiling
	BreakerTimeout  time.Duration // QGATE_BREAKER_TIMEOUT: open circuit's wait before a probe
	RegistryRefresh time.Duration // QGATE_REGISTRY_REFRESH: how often destination changes are read
	Retention       time.Duration // QGATE_RETENTION: delivery records older than this are pruned

	LogLevel        string        // QGATE_LOG_LEVEL: debug|info|warn|error
	ShutdownTimeout time.Duration // QGATE_SHUTDOWN_TIMEOUT
	ShutdownDrain   time.Duration // QGATE_SHUTDOWN_DRAIN: on SIGTERM, answer 503 (readyz too) this long before closing the listener
	StartupTimeout  time.Duration // QGATE_STARTUP_TIMEOUT: how long start-up waits for Kafka and PostgreSQL to answer

	// DebugAddr, when set, serves Go's profiler (net/http/pprof) on a second listener. It
	// must be a loopback address: profiles show internals and carry no authentication.
	DebugAddr string // QGATE_DEBUG_ADDR, e.g. 127.0.0.1:6060; empty (the default): off

	// MetricsAddr, when set, serves /metrics on a listener of its own (and no longer on Addr),
	// so that the scrape port can be kept off the public one.
	MetricsAddr string // QGATE_METRICS_ADDR, e.g. 127.0.0.1:9090 or :9090; empty (the default): /metrics on Addr
}

// Default returns the embedded-default configuration.
func Default() Config {
	return Config{
		Addr:              ":8080",
		DataDir:           "./data",
		AllowedHosts:      []string{"*.qualtrics.com"},
		ProfileTopic:      "qgate.profile-updates",
		DeliveryTopic:     "qgate.delivery-jobs",
		Partitions:        12,
		ReplicationFactor: 1,
		ProduceTimeout:    10 * time.Second,
		MaxBodyBytes:      5 << 20,
		MaxBatch:          500,
		DeliveryTimeout:   10 * time.Second,
		RetryWindow:       24 * time.Hour,
		RetryBaseDelay:    time.Second,
		RetryMaxDelay:     5 * time.Minute,
		BreakerTimeout:    30 * time.Second,
		RegistryRefresh:   time.Second,
		Retention:         7 * 24 * time.Hour,
		LogLevel:          "info",
		ShutdownTimeout:   25 * time.Second,
		ShutdownDrain:     2 * time.Second,
		StartupTimeout:    time.Minute,
	}
}

// Load reads the environment (through getenv) and then the flags in args, flags winning.
// It returns the validated configuration or an error naming every bad setting.
func Load(args []string, getenv func(string) string) (Config, error) {
	c := Default()
	var errs []error
	str := func(env string, dst *string) {
		if v := strings.TrimSpace(getenv(env)); v != "" {
			*dst = v
		}
	}
	list := func(env string, dst *[]string) {
		if v := strings.TrimSpace(getenv(env)); v != "" {
			*dst = splitList(v)
		}
	}
	integer := func(env string, dst *int) {
		if v := strings.TrimSpace(getenv(env)); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: not a whole number", env, v))
				return
			}
			*dst = n
		}
	}
	dur := func(env string, dst *time.Duration) {
		if v := strings.TrimSpace(getenv(env)); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: not a duration such as 10s or 1m", env, v))
				return
			}
			*dst = d
		}
	}
	boolean := func(env string, dst *bool) {
		if v := strings.TrimSpace(getenv(env)); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want true or false", env, v))
				return
			}
			*dst = b
		}
	}
	str("QGATE_ADDR", &c.Addr)
	str("QGATE_DATA_DIR", &c.DataDir)
	list("QGATE_KAFKA_BROKERS", &c.KafkaBrokers)
	str("QGATE_DATABASE_URL", &c.DatabaseURL)
	str("QGATE_ADMIN_KEY", &c.AdminKey)
	str("QGATE_SECRET_KEY", &c.SecretKey)
	list("QGATE_ALLOWED_HOSTS", &c.AllowedHosts)
	boolean("QGATE_ALLOW_PRIVATE_NETWORKS", &c.AllowPrivateNetworks)
	str("QGATE_PROFILE_TOPIC", &c.ProfileTopic)
	str("QGATE_DELIVERY_TOPIC", &c.DeliveryTopic)
	integer("QGATE_KAFKA_PARTITIONS", &c.Partitions)
	integer("QGATE_KAFKA_REPLICATION_FACTOR", &c.ReplicationFactor)
	dur("QGATE_PRODUCE_TIMEOUT", &c.ProduceTimeout)
	dur("QGATE_KAFKA_FETCH_WAIT", &c.FetchWait)
	var maxBody int
	integer("QGATE_MAX_BODY_BYTES", &maxBody)
	if maxBody != 0 {
		c.MaxBodyBytes = int64(maxBody)
	}
	integer("QGATE_MAX_BATCH", &c.MaxBatch)
	dur("QGATE_DELIVERY_TIMEOUT", &c.DeliveryTimeout)
	dur("QGATE_RETRY_WINDOW", &c.RetryWindow)
	dur("QGATE_RETRY_BASE_DELAY", &c.RetryBaseDelay)
	dur("QGATE_RETRY_MAX_DELAY", &c.RetryMaxDelay)
	dur("QGATE_BREAKER_TIMEOUT", &c.BreakerTimeout)
	dur("QGATE_REGISTRY_REFRESH", &c.RegistryRefresh)
	dur("QGATE_RETENTION", &c.Retention)
	str("QGATE_LOG_LEVEL", &c.LogLevel)
	dur("QGATE_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout)
	dur("QGATE_SHUTDOWN_DRAIN", &c.ShutdownDrain)
	dur("QGATE_STARTUP_TIMEOUT", &c.StartupTimeout)
	str("QGATE_DEBUG_ADDR", &c.DebugAddr)
	str("QGATE_METRICS_ADDR", &c.MetricsAddr)

	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.StringVar(&c.Addr, "addr", c.Addr, "listen address (QGATE_ADDR)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "data directory (QGATE_DATA_DIR)")
	brokers := fs.String("kafka-brokers", strings.Join(c.KafkaBrokers, ","), "Kafka brokers, comma separated; empty: embedded broker (QGATE_KAFKA_BROKERS)")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "postgres:// URL; empty: SQLite in the data dir (QGATE_DATABASE_URL)")
	fs.IntVar(&c.Partitions, "kafka-partitions", c.Partitions, "partitions of topics qgate creates (QGATE_KAFKA_PARTITIONS)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (QGATE_LOG_LEVEL)")
	if err := fs.Parse(args); err != nil {
		return c, errors.Join(append(errs, err)...)
	}
	c.KafkaBrokers = splitList(*brokers)
	// Every bad setting is reported at once: a setting that could not be read keeps its
	// default, so validating the rest does not repeat its error.
	errs = append(errs, c.Validate())
	return c, errors.Join(errs...)
}

// Validate checks the configuration as a whole and names every bad setting.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
		bad("QGATE_ADDR=%q: want host:port, e.g. :8080", c.Addr)
	}
	if c.DataDir == "" {
		bad("QGATE_DATA_DIR: must not be empty")
	}
	for _, b := range c.KafkaBrokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			bad("QGATE_KAFKA_BROKERS: %q is not host:port", b)
		}
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		bad("QGATE_DATABASE_URL: want a postgres:// URL (leave it empty for SQLite in the data dir)")
	}
	if c.AdminKey != "" && len(c.AdminKey) < 24 {
		bad("QGATE_ADMIN_KEY: too short; use at least 24 random characters")
	}
	if c.SecretKey != "" {
		if _, err := DecodeSecretKey(c.SecretKey); err != nil {
			bad("QGATE_SECRET_KEY: %v", err)
		}
	} else if len(c.KafkaBrokers) > 0 || c.DatabaseURL != "" {
		bad("QGATE_SECRET_KEY: required outside the embedded default (32 bytes, hex or base64)")
	}
	if len(c.AllowedHosts) == 0 {
		bad("QGATE_ALLOWED_HOSTS: must list at least one host pattern")
	}
	for _, h := range c.AllowedHosts {
		if strings.ContainsAny(h, "/: ") || strings.Count(h, "*") > 1 || (strings.Contains(h, "*") && !strings.HasPrefix(h, "*.")) {
			bad("QGATE_ALLOWED_HOSTS: %q is not a host or *.domain pattern", h)
		}
	}
	if c.ProfileTopic == "" || c.DeliveryTopic == "" || c.ProfileTopic == c.DeliveryTopic {
		bad("QGATE_PROFILE_TOPIC / QGATE_DELIVERY_TOPIC: must be two different, non-empty names")
	}
	if c.Partitions < 1 || c.Partitions > 1000 {
		bad("QGATE_KAFKA_PARTITIONS=%d: want 1 to 1000", c.Partitions)
	}
	if c.ReplicationFactor < 1 {
		bad("QGATE_KAFKA_REPLICATION_FACTOR=%d: want at least 1", c.ReplicationFactor)
	}
	if c.ProduceTimeout <= 0 {
		bad("QGATE_PRODUCE_TIMEOUT: must be positive")
	}
	if c.FetchWait < 0 || c.FetchWait > time.Minute {
		bad("QGATE_KAFKA_FETCH_WAIT=%s: want 0 (the default, 1.5s) up to 1m", c.FetchWait)
	}
	if c.MaxBodyBytes < 1024 {
		bad("QGATE_MAX_BODY_BYTES=%d: want at least 1024", c.MaxBodyBytes)
	}
	if c.MaxBatch < 1 || c.MaxBatch > 10000 {
		bad("QGATE_MAX_BATCH=%d: want 1 to 10000", c.MaxBatch)
	}
	for name, d := range map[string]time.Duration{
		"QGATE_DELIVERY_TIMEOUT": c.DeliveryTimeout, "QGATE_RETRY_WINDOW": c.RetryWindow,
		"QGATE_RETRY_BASE_DELAY": c.RetryBaseDelay, "QGATE_RETRY_MAX_DELAY": c.RetryMaxDelay,
		"QGATE_BREAKER_TIMEOUT": c.BreakerTimeout, "QGATE_REGISTRY_REFRESH": c.RegistryRefresh,
		"QGATE_RETENTION": c.Retention,
	} {
		if d <= 0 {
			bad("%s: must be positive", name)
		}
	}
	if c.RetryBaseDelay > c.RetryMaxDelay {
		bad("QGATE_RETRY_BASE_DELAY (%s) must not exceed QGATE_RETRY_MAX_DELAY (%s)", c.RetryBaseDelay, c.RetryMaxDelay)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("QGATE_LOG_LEVEL=%q: want debug, info, warn or error", c.LogLevel)
	}
	if c.ShutdownTimeout <= 0 {
		bad("QGATE_SHUTDOWN_TIMEOUT: must be positive")
	}
	if c.ShutdownDrain < 0 || c.ShutdownDrain+5*time.Second > 30*time.Second {
		bad("QGATE_SHUTDOWN_DRAIN=%s: want 0 to 25s (the process must exit within 30 s of SIGTERM)", c.ShutdownDrain)
	}
	if c.StartupTimeout < time.Second || c.StartupTimeout > time.Hour {
		bad("QGATE_STARTUP_TIMEOUT=%s: want 1s to 1h", c.StartupTimeout)
	}
	if c.DebugAddr != "" {
		host, port, err := net.SplitHostPort(c.DebugAddr)
		ip := net.ParseIP(host)
		if err != nil || port == "" || (host != "localhost" && (ip == nil || !ip.IsLoopback())) {
			bad("QGATE_DEBUG_ADDR=%q: want a loopback host:port such as 127.0.0.1:6060 (the profiler has no authentication)", c.DebugAddr)
		}
	}
	if c.MetricsAddr != "" {
		if _, port, err := net.SplitHostPort(c.MetricsAddr); err != nil || port == "" {
			bad("QGATE_METRICS_ADDR=%q: want host:port, e.g. 127.0.0.1:9090", c.MetricsAddr)
		} else if c.MetricsAddr == c.Addr && port != "0" {
			bad("QGATE_METRICS_ADDR=%q: must differ from QGATE_ADDR", c.MetricsAddr)
		}
	}
	return errors.Join(errs...)
}

// Warnings lists settings that are valid but unsafe in production, for the log at start.
func (c Config) Warnings() []string {
	var w []string
	if c.AllowPrivateNetworks {
		w = append(w, "QGATE_ALLOW_PRIVATE_NETWORKS=true: destinations may point at loopback, private and link-local addresses (SSRF protection is off); use it only for local testing")
	}
	return w
}

// Embedded reports whether qgate runs its own in-memory broker.
func (c Config) Embedded() bool { return len(c.KafkaBrokers) == 0 }

// ConsumerFetchWait is the fetch wait qgate's consumers use: FetchWait when set, else 1.5 s,
// on the embedded broker and on a cluster alike.
//
// kafka-go asks the broker to hold a fetch for the wait less a slack (a quarter of it below
// 1 s, 1 s above) and gives up on the answer at the full wait: at 20 ms a Kafka broker busy
// after a restart answered later than the 5 ms slack, every fetch of its partitions ended in
// an i/o timeout and a re-dial, and the consumer read nothing for minutes. A broker answers a
// held fetch as soon as a record arrives (MinBytes is 1), so a long wait costs no latency; the
// embedded broker (kfake) does too — its produce path wakes every fetch watching the partition
// (kfake's watchFetch.push), which internal/kafka's TestHeldFetchIsAnsweredWhenARecordArrives
// checks — so it needs no short wait either. The embedded default used 20 ms until issue #12:
// its 24 partition fetchers then polled 1,200 times a second and an idle `qgate serve` burnt
// ~0.2 cores; at 1.5 s (the broker holds each fetch 0.5 s) it is ~0.015 (`qbench idle`).
func (c Config) ConsumerFetchWait() time.Duration {
	if c.FetchWait > 0 {
		return c.FetchWait
	}
	return 1500 * time.Millisecond
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
