package kafka

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/qgate/qgate/internal/queue"
)

// BenchmarkPublishConcurrent is ingest at batch 1 seen from the producer: 64 callers each
// publish one 800-byte message at a time (acks=all), so what one produce carries is what
// queued while the previous was in flight. QGATE_BENCH_BROKERS points it at a separate broker
// (e.g. a `qgate broker` process) instead of an in-process kfake.
func BenchmarkPublishConcurrent(b *testing.B) {
	const topic = "bench"
	brokers := strings.Split(os.Getenv("QGATE_BENCH_BROKERS"), ",")
	if brokers[0] == "" {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(12, topic))
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		brokers = c.ListenAddrs()
	} else if _, err := EnsureTopics(context.Background(), brokers, TopicSpec{Name: topic, Partitions: 12, ReplicationFactor: 1}); err != nil {
		b.Fatal(err)
	}
	p := NewProducer(brokers, topic, ProducerOptions{})
	defer p.Close()
	value := make([]byte, 800)
	var seq atomic.Int64
	publish := func() {
		key := fmt.Appendf(nil, "profile-%d", seq.Add(1))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := p.Publish(ctx, []queue.Message{{Key: key, Value: value}}); err != nil {
			b.Error(err)
		}
	}
	publish() // metadata
	b.SetParallelism(32)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			publish()
		}
	})
}
