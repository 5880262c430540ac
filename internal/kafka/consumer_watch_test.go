package kafka

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/qgate/qgate/internal/queue"
)

// A group leader that cannot read its topic's partitions when it assigns them assigns none,
// and the group is stable with nobody reading (on the cluster, after a lost quorum: a broker
// just back did not know the topic yet). The consumer watches the partitions and rebalances
// when they appear: here the group forms before its topic exists, and a record produced once
// the topic is created is read within a few partition watches.
func TestConsumerReadsATopicThatAppearsAfterItsGroupFormed(t *testing.T) {
	e, ctx := embeddedBroker(t)
	// The moment to create the topic: after the group's first generation began, its leader
	// having assigned nothing, and its partition watch having read the topic once (the first
	// partition read after the leader's SyncGroup).
	var synced atomic.Bool
	assigned := make(chan int, 1) // partitions in the first generation's assignments
	counted := make(chan struct{})
	e.cluster.ControlKey(int16(kmsg.SyncGroup), func(req kmsg.Request) (kmsg.Response, error, bool) {
		sync := req.(*kmsg.SyncGroupRequest)
		if len(sync.GroupAssignment) == 0 { // a follower's SyncGroup
			e.cluster.KeepControl()
			return nil, nil, false
		}
		n := 0
		for _, a := range sync.GroupAssignment {
			var ma kmsg.ConsumerMemberAssignment
			if err := ma.ReadFrom(a.MemberAssignment); err == nil {
				for _, tp := range ma.Topics {
					n += len(tp.Partitions)
				}
			}
		}
		assigned <- n
		synced.Store(true)
		e.cluster.DropControl()
		return nil, nil, false
	})
	e.cluster.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		m := req.(*kmsg.MetadataRequest)
		if !synced.Load() || !asksOnlyFor(m, "late") {
			e.cluster.KeepControl()
			return nil, nil, false
		}
		close(counted)
		e.cluster.DropControl()
		return nil, nil, false
	})
	const watch = 500 * time.Millisecond
	c := NewConsumer(e.Addrs(), "late-group", "late", ConsumerOptions{MaxWait: 100 * time.Millisecond, PartitionWatch: watch})
	defer c.Close()

	select {
	case n := <-assigned:
		if n != 0 {
			t.Fatalf("the leader assigned %d partitions before the topic existed: the test tests nothing", n)
		}
	case <-ctx.Done():
		t.Fatal("the group never formed: no SyncGroup with assignments")
	}
	select {
	case <-counted:
	case <-ctx.Done():
		t.Fatal("the first generation never read the topic's partitions")
	}

	if _, err := EnsureTopics(ctx, e.Addrs(), TopicSpec{Name: "late", Partitions: 2, ReplicationFactor: 1}); err != nil {
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

// The race behind a stalled group on the cluster: the group coordinator does not know the
// topic when the leader reads its partitions (a topic created a moment before, or a broker
// just back), and knows it a moment later, when the partition watch takes its first count.
// kafka-go's leader alone assigns nothing, the watch never sees the count change, and the group
// stays stable with nobody reading. Here kfake answers "unknown topic" to exactly the first
// partition read after the group's first join; every partition must still be read.
func TestGroupLeaderAssignsPartitionsItsCoordinatorMissed(t *testing.T) {
	e, ctx := embeddedBroker(t)
	const topic, partitions = "missed", 4
	if _, err := EnsureTopics(ctx, e.Addrs(), TopicSpec{Name: topic, Partitions: partitions, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	p := NewProducer(e.Addrs(), topic, ProducerOptions{})
	defer p.Close()
	var msgs []queue.Message
	for i := range 64 { // keys enough for every partition
		msgs = append(msgs, queue.Message{Key: fmt.Appendf(nil, "key-%d", i), Value: []byte("v")})
	}
	if err := p.Publish(ctx, msgs); err != nil {
		t.Fatal(err)
	}

	var joined, blinded atomic.Bool
	e.cluster.ControlKey(int16(kmsg.JoinGroup), func(kmsg.Request) (kmsg.Response, error, bool) {
		joined.Store(true)
		e.cluster.DropControl()
		return nil, nil, false
	})
	e.cluster.ControlKey(int16(kmsg.Metadata), func(req kmsg.Request) (kmsg.Response, error, bool) {
		e.cluster.KeepControl()
		m := req.(*kmsg.MetadataRequest)
		if !joined.Load() || blinded.Load() || !asksOnlyFor(m, topic) {
			return nil, nil, false
		}
		blinded.Store(true)
		resp := m.ResponseKind().(*kmsg.MetadataResponse)
		resp.Version = m.Version
		rt := kmsg.NewMetadataResponseTopic()
		rt.Topic = kmsg.StringPtr(topic)
		rt.ErrorCode = 3 // UNKNOWN_TOPIC_OR_PARTITION
		resp.Topics = append(resp.Topics, rt)
		return resp, nil, true
	})

	const watch = 500 * time.Millisecond
	c := NewConsumer(e.Addrs(), "missed-group", topic, ConsumerOptions{MaxWait: 100 * time.Millisecond, PartitionWatch: watch})
	defer c.Close()
	read := map[int]bool{}
	timeout := time.After(10 * watch)
	for len(read) < partitions {
		select {
		case r := <-c.Records():
			read[r.Partition] = true
		case <-timeout:
			t.Fatalf("after %s the group had read partitions %v of %d (the coordinator's blind read happened: %v)", 10*watch, read, partitions, blinded.Load())
		}
	}
	if !blinded.Load() {
		t.Fatal("no partition read was answered with an unknown topic: the test tests nothing")
	}
}

// asksOnlyFor tells whether a metadata request asks for topic alone: a partition read of it.
func asksOnlyFor(m *kmsg.MetadataRequest, topic string) bool {
	return len(m.Topics) == 1 && m.Topics[0].Topic != nil && *m.Topics[0].Topic == topic
}
