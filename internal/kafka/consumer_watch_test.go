package kafka

import (
	"context"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/qgate/qgate/internal/queue"
)

// A group leader that cannot read its topic's partitions when it assigns them assigns none,
// and the group is stable with nobody reading (on the cluster, after a lost quorum: a broker
// just back did not know the topic yet). The consumer watches the partitions and rebalances
// when they appear: here the group forms before its topic exists, and a record produced once
// the topic is created is read within a few partition watches.
func TestConsumerReadsATopicThatAppearsAfterItsGroupFormed(t *testing.T) {
	e, err := StartEmbedded(0)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const watch = 500 * time.Millisecond
	c := NewConsumer(e.Addrs(), "late-group", "late", ConsumerOptions{MaxWait: 100 * time.Millisecond, PartitionWatch: watch})
	defer c.Close()

	// Await the group, stable, its one member assigned nothing (the topic does not exist).
	client := &kafkago.Client{Addr: kafkago.TCP(e.Addrs()...), Timeout: 5 * time.Second}
	for {
		res, err := client.DescribeGroups(ctx, &kafkago.DescribeGroupsRequest{GroupIDs: []string{"late-group"}})
		if err == nil && len(res.Groups) == 1 && res.Groups[0].GroupState == "Stable" && len(res.Groups[0].Members) == 1 {
			if n := len(res.Groups[0].Members[0].MemberAssignments.Topics); n != 0 {
				t.Fatalf("the member was assigned %d topics before the topic existed: the test tests nothing", n)
			}
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the group did not form: %v %+v", err, res)
		case <-time.After(50 * time.Millisecond):
		}
	}

	if err := EnsureTopics(ctx, e.Addrs(), TopicSpec{Name: "late", Partitions: 2, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	p := NewProducer(e.Addrs(), "late", ProducerOptions{})
	defer p.Close()
	if err := p.Publish(ctx, []queue.Message{{Key: []byte("k"), Value: []byte("after the group formed")}}); err != nil {
		t.Fatal(err)
	}
	select {
	case r := <-c.Records():
		if string(r.Value) != "after the group formed" {
			t.Fatalf("read %q", r.Value)
		}
	case <-time.After(20 * watch):
		t.Fatalf("no record read %s after its topic appeared: the group never rebalanced onto it", 20*watch)
	}
}
