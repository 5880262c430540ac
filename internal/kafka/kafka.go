// Package kafka adapts segmentio/kafka-go to the interfaces qgate's domains declare: a producer
// with acks=all, consumer-group readers with explicit commits, topic creation at start, and the
// embedded in-memory broker (kfake) of the default mode.
package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TopicSpec describes a topic qgate creates when it is missing.
type TopicSpec struct {
	Name              string
	Partitions        int
	ReplicationFactor int
}

// Embedded is the in-process Kafka-protocol broker of the default mode. It keeps everything in
// memory: nothing survives the process.
type Embedded struct {
	cluster *kfake.Cluster
}

// StartEmbedded starts a single-broker kfake cluster listening on 127.0.0.1:port (0: any port).
func StartEmbedded(port int) (*Embedded, error) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
	if err != nil {
		return nil, fmt.Errorf("start embedded broker: %w", err)
	}
	return &Embedded{cluster: c}, nil
}

// Addrs returns the broker's host:port addresses.
func (e *Embedded) Addrs() []string { return e.cluster.ListenAddrs() }

// Close stops the broker.
func (e *Embedded) Close() { e.cluster.Close() }

// Ping dials the brokers afresh (no cached connection or metadata) and asks one for the
// cluster's brokers: it succeeds only when a broker really answers now.
func Ping(ctx context.Context, brokers []string) error {
	var errs []error
	for _, b := range brokers {
		conn, err := kafkago.DialContext(ctx, "tcp", b)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if dl, ok := ctx.Deadline(); ok {
			conn.SetDeadline(dl)
		}
		_, err = conn.Brokers()
		conn.Close()
		if err == nil {
			return nil
		}
		errs = append(errs, err)
	}
	return fmt.Errorf("kafka unreachable: %w", errors.Join(errs...))
}

// PartitionCount returns how many partitions a topic has.
func PartitionCount(ctx context.Context, brokers []string, topic string) (int, error) {
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 5 * time.Second}
	md, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("kafka metadata: %w", err)
	}
	for _, t := range md.Topics {
		if t.Name == topic {
			if t.Error != nil {
				return 0, t.Error
			}
			return len(t.Partitions), nil
		}
	}
	return 0, fmt.Errorf("topic %s not found", topic)
}
