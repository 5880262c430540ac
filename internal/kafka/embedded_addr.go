package kafka

import (
	"fmt"
	"net"
	"strconv"

	"github.com/twmb/franz-go/pkg/kfake"
)

// EmbeddedConfig configures a standalone embedded broker (`qgate broker`).
type EmbeddedConfig struct {
	// Addr is the host:port to listen on (port 0: any free port). The broker advertises the
	// address it listens on, so the host must be one its clients can dial: not 0.0.0.0.
	Addr string
	// RetentionBytes bounds each partition's in-memory log: ApplyRetention drops the oldest
	// segments beyond it (segments are then a quarter of it). 0 keeps everything.
	RetentionBytes int64
}

// StartEmbeddedAt starts a single-broker kfake cluster listening on cfg.Addr. Like
// StartEmbedded, it keeps everything in memory.
func StartEmbeddedAt(cfg EmbeddedConfig) (*Embedded, error) {
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("embedded broker address %q: want host:port", cfg.Addr)
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return nil, fmt.Errorf("embedded broker address %q: the broker advertises its listen address, so give a host clients can dial (e.g. 127.0.0.1)", cfg.Addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return nil, fmt.Errorf("embedded broker address %q: bad port", cfg.Addr)
	}
	if cfg.RetentionBytes < 0 {
		return nil, fmt.Errorf("embedded broker retention %d: must not be negative", cfg.RetentionBytes)
	}
	opts := []kfake.Opt{
		kfake.NumBrokers(1),
		// kfake always asks for 127.0.0.1:port; listen where we were told instead.
		kfake.ListenFn(func(network, _ string) (net.Listener, error) { return net.Listen(network, cfg.Addr) }),
	}
	if cfg.RetentionBytes > 0 {
		// kfake frees memory a whole segment at a time, so segments must be smaller than the
		// retention for it to bound anything (its default segment is 100 MiB).
		segment := max(cfg.RetentionBytes/4, 1<<20)
		opts = append(opts, kfake.BrokerConfigs(map[string]string{
			"log.retention.bytes": strconv.FormatInt(cfg.RetentionBytes, 10),
			"log.segment.bytes":   strconv.FormatInt(segment, 10),
		}))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("start embedded broker on %s: %w", cfg.Addr, err)
	}
	return &Embedded{cluster: c}, nil
}

// ApplyRetention drops the oldest batches of every partition whose log exceeds the configured
// retention. Call it periodically: kfake enforces broker-level retention only when asked.
func (e *Embedded) ApplyRetention() { e.cluster.ApplyRetention() }
