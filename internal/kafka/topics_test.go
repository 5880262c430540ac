package kafka

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func TestEnsureTopicsReportsWhatItCreated(t *testing.T) {
	e, ctx := embeddedBroker(t)
	specs := []TopicSpec{{Name: "a", Partitions: 2, ReplicationFactor: 1}, {Name: "b", Partitions: 3, ReplicationFactor: 1}}
	created, err := EnsureTopics(ctx, e.Addrs(), specs...)
	if err != nil || !slices.Equal(created, []string{"a", "b"}) {
		t.Fatalf("first EnsureTopics: created %v, %v; want [a b]", created, err)
	}
	created, err = EnsureTopics(ctx, e.Addrs(), append(specs, TopicSpec{Name: "c", Partitions: 1, ReplicationFactor: 1})...)
	if err != nil || !slices.Equal(created, []string{"c"}) {
		t.Fatalf("second EnsureTopics: created %v, %v; want only [c]", created, err)
	}
}

// A broker that has not applied a new topic's metadata yet (on Apache Kafka, a moment after the
// controller committed it) must hold AwaitLeaders back, even when the other brokers know the
// topic: here one of three brokers answers its first lies metadata requests with
// LEADER_NOT_AVAILABLE for the topic.
func TestAwaitLeadersWaitsForEveryBroker(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(3))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	addrs := cluster.ListenAddrs()
	if _, err := EnsureTopics(ctx, addrs, TopicSpec{Name: "fresh", Partitions: 4, ReplicationFactor: 3}); err != nil {
		t.Fatal(err)
	}
	md, err := metadata(ctx, kafkago.TCP(addrs...), []string{"fresh"})
	if err != nil {
		t.Fatal(err)
	}
	var brokers []kmsg.MetadataResponseBroker
	for _, b := range md.Brokers {
		brokers = append(brokers, kmsg.MetadataResponseBroker{NodeID: int32(b.ID), Host: b.Host, Port: int32(b.Port)})
	}
	late := brokers[len(brokers)-1].NodeID
	const lies = 4
	var lied, askedLate atomic.Int32
	cluster.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		cluster.KeepControl()
		if cluster.CurrentNode() != late { // kafka-go's transport asks for every topic
			return nil, nil, false
		}
		askedLate.Add(1)
		if lied.Load() >= lies {
			return nil, nil, false
		}
		lied.Add(1)
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		resp.Brokers = brokers
		topic := kmsg.NewMetadataResponseTopic()
		name := "fresh"
		topic.Topic, topic.ErrorCode = &name, 5 // LEADER_NOT_AVAILABLE
		resp.Topics = []kmsg.MetadataResponseTopic{topic}
		return resp, nil, true
	})
	if err := AwaitLeaders(ctx, addrs, "fresh"); err != nil {
		t.Fatalf("AwaitLeaders: %v", err)
	}
	if lied.Load() != lies || askedLate.Load() <= lies {
		t.Fatalf("AwaitLeaders returned after %d of %d answers without a leader from node %d (asked it %d times)", lied.Load(), lies, late, askedLate.Load())
	}
}

func TestAwaitLeadersNamesWhatIsMissing(t *testing.T) {
	e, ctx := embeddedBroker(t)
	wctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	err := AwaitLeaders(wctx, e.Addrs(), "nowhere")
	if err == nil || !strings.Contains(err.Error(), "topic nowhere") {
		t.Fatalf("AwaitLeaders on a topic that does not exist: %v; want an error naming it", err)
	}
}
