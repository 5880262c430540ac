//go:build linux

package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
)

// TestComposeFileMatchesTheTestedCluster: docker-compose.yml parses and has the shape of the
// cluster `make test-kafka` tests: three KRaft brokers at the Makefile's KAFKA_VERSION with one
// CLUSTER_ID, data on volumes, restart policies; qgate's health check asks /readyz (`qgate
// healthcheck`), its stop grace outlasts drain + shutdown; and the build context leaves out data/.
func TestComposeFileMatchesTheTestedCluster(t *testing.T) {
	root, err := moduleRoot()
	if err != nil {
		fatal(t, err)
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		fatal(t, err)
	}
	m := regexp.MustCompile(`(?m)^KAFKA_VERSION\s*\?=\s*(\S+)`).FindSubmatch(mk)
	if m == nil {
		fatal(t, "Makefile: no KAFKA_VERSION ?= line")
	}
	version := string(m[1])
	raw, err := os.ReadFile(filepath.Join(root, "docker-compose.yml"))
	if err != nil {
		fatal(t, err)
	}
	type service struct {
		Image           string         `yaml:"image"`
		Restart         string         `yaml:"restart"`
		StopGracePeriod string         `yaml:"stop_grace_period"`
		Environment     map[string]any `yaml:"environment"`
		Volumes         []string       `yaml:"volumes"`
		Healthcheck     map[string]any `yaml:"healthcheck"`
	}
	var f struct {
		Services map[string]service `yaml:"services"`
		Volumes  map[string]any     `yaml:"volumes"`
	}
	// A key next to a merge (<<: *anchor) overrides the merged one, as YAML and Compose say;
	// go-yaml reports it as a duplicate unless told.
	if err := yaml.UnmarshalWithOptions(raw, &f, yaml.AllowDuplicateMapKey()); err != nil {
		fatalf(t, "docker-compose.yml does not parse: %v", err)
	}
	clusterIDs := map[string]bool{}
	var voters []string
	for i, name := range []string{"kafka-1", "kafka-2", "kafka-3"} {
		s, ok := f.Services[name]
		if !ok {
			errorf(t, "no service %s", name)
			continue
		}
		if want := "apache/kafka:" + version; s.Image != want {
			errorf(t, "%s: image %q, want %q (the version make test-kafka tests)", name, s.Image, want)
		}
		env := func(k string) string {
			return strings.TrimSpace(toString(s.Environment[k]))
		}
		clusterIDs[env("CLUSTER_ID")] = true
		voters = append(voters, env("KAFKA_CONTROLLER_QUORUM_VOTERS"))
		if env("KAFKA_NODE_ID") != string(rune('1'+i)) {
			errorf(t, "%s: KAFKA_NODE_ID %q", name, env("KAFKA_NODE_ID"))
		}
		dir := env("KAFKA_LOG_DIRS")
		if dir == "" || strings.HasPrefix(dir, "/tmp") || !slices.ContainsFunc(s.Volumes, func(v string) bool { return strings.HasSuffix(v, ":"+dir) }) {
			errorf(t, "%s: KAFKA_LOG_DIRS %q is not on a volume (%v)", name, dir, s.Volumes)
		}
		for k, want := range map[string]string{"KAFKA_MIN_INSYNC_REPLICAS": "2", "KAFKA_DEFAULT_REPLICATION_FACTOR": "3",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR": "3", "KAFKA_PROCESS_ROLES": "broker,controller"} {
			if env(k) != want {
				errorf(t, "%s: %s=%q, want %q", name, k, env(k), want)
			}
		}
		if s.Restart == "" {
			errorf(t, "%s: no restart policy", name)
		}
	}
	if len(clusterIDs) != 1 || clusterIDs[""] {
		errorf(t, "want one CLUSTER_ID for all brokers, got %v", clusterIDs)
	}
	if len(voters) != 3 || len(slices.Compact(slices.Clone(voters))) != 1 || strings.Count(voters[0], "@") != 3 {
		errorf(t, "controller.quorum.voters differ or are not three: %v", voters)
	}
	for _, name := range []string{"qgate-1", "qgate-2"} {
		s, ok := f.Services[name]
		if !ok {
			errorf(t, "no service %s", name)
			continue
		}
		if got := toString(s.Healthcheck["test"]); !strings.Contains(got, "healthcheck") {
			errorf(t, "%s: health check %s does not run `qgate healthcheck` (/readyz)", name, got)
		}
		if s.Restart == "" {
			errorf(t, "%s: no restart policy", name)
		}
		if d, err := time.ParseDuration(s.StopGracePeriod); err != nil || d <= 27*time.Second {
			errorf(t, "%s: stop_grace_period %q, want more than drain 2s + shutdown 25s", name, s.StopGracePeriod)
		}
		if got := toString(s.Environment["QGATE_KAFKA_REPLICATION_FACTOR"]); got != "3" {
			errorf(t, "%s: QGATE_KAFKA_REPLICATION_FACTOR %q, want 3", name, got)
		}
	}
	ignore, err := os.ReadFile(filepath.Join(root, ".dockerignore"))
	if err != nil || !slices.Contains(strings.Fields(string(ignore)), "data/") {
		errorf(t, ".dockerignore must leave data/ (secret.key, the SQLite store) out of the build context: %v", err)
	}
}

func toString(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case []any:
		var parts []string
		for _, p := range x {
			parts = append(parts, toString(p))
		}
		return strings.Join(parts, " ")
	default:
		b, _ := yaml.Marshal(x)
		return strings.TrimSpace(string(b))
	}
}
