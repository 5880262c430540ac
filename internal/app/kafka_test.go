package app_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// readTopic consumes n messages from topic (all partitions, from the start) with a kafka-go
// consumer group reader, failing the test if they do not arrive within 30 s.
func readTopic(t *testing.T, brokers []string, topic string, n int) []kafkago.Message {
	t.Helper()
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: brokers, Topic: topic, GroupID: fmt.Sprintf("test-reader-%d", time.Now().UnixNano()),
		StartOffset: kafkago.FirstOffset, MaxWait: 50 * time.Millisecond,
	})
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []kafkago.Message
	for len(out) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("read %s: got %d of %d messages: %v", topic, len(out), n, err)
		}
		out = append(out, m)
	}
	return out
}

// topicSize returns how many messages the topic holds across its partitions.
func topicSize(t *testing.T, brokers []string, topic string) int64 {
	t.Helper()
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := client.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		t.Fatal(err)
	}
	req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
	for _, tp := range md.Topics {
		for _, p := range tp.Partitions {
			req.Topics[topic] = append(req.Topics[topic], kafkago.LastOffsetOf(p.ID), kafkago.FirstOffsetOf(p.ID))
		}
	}
	resp, err := client.ListOffsets(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			t.Fatalf("list offsets: %v", po.Error)
		}
		total += po.LastOffset - po.FirstOffset
	}
	return total
}

// Both stages' consumers report their failures: their series are on /metrics from the start.
func TestConsumerErrorMetricsOfBothStages(t *testing.T) {
	n := startNode(t, nil)
	_, body, _ := n.do("GET", "/metrics", "", nil)
	for _, group := range []string{"qgate-router", "qgate-dispatcher"} {
		for _, op := range []string{"fetch", "commit"} {
			want := fmt.Sprintf(`qgate_kafka_consumer_errors_total{group=%q,op=%q}`, group, op)
			if !strings.Contains(string(body), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	}
}
