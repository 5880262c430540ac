package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// fullViewBalancer wraps one of kafka-go's group balancers so that the group's leader assigns
// every partition the cluster knows of, not only those its coordinator knew at that instant.
//
// kafka-go's leader reads the topic's partitions from the group coordinator alone, and a topic
// that broker does not know yet (just created, or the broker just back after a lost quorum) is
// "no partitions": the leader assigns nothing. The partition watch cannot repair that when the
// broker learns the topic before the watch takes its first count, a few milliseconds later:
// the count then never changes, and the group stays stable with nobody reading (CI, Kafka
// 3.9.2: two members joined at once on a topic created just before, 20 s without a record).
// The wrapper asks every broker it was given (the consumer's bootstrap list) itself, keeps the
// largest answer per topic where it beats the coordinator's, and waits up to assignWait for a
// topic none of them knows yet.
type fullViewBalancer struct {
	kafkago.GroupBalancer // protocol name and user data unchanged: older members still agree
	brokers               []string
	onError               func(op string, err error)
}

const (
	assignWait      = time.Second            // how long a leader waits for a topic no broker knows
	assignReadEvery = 200 * time.Millisecond // between two reads of the brokers while waiting
	assignDial      = time.Second            // one broker's dial and answer
)

// AssignGroups assigns members' topics from the merged view of every broker that answers.
func (b fullViewBalancer) AssignGroups(members []kafkago.GroupMember, partitions []kafkago.Partition) kafkago.GroupMemberAssignments {
	byTopic := map[string][]kafkago.Partition{}
	for _, m := range members {
		for _, t := range m.Topics {
			byTopic[t] = nil
		}
	}
	for _, p := range partitions {
		if _, ok := byTopic[p.Topic]; ok {
			byTopic[p.Topic] = append(byTopic[p.Topic], p)
		}
	}
	deadline := time.Now().Add(assignWait)
	for {
		missing := false
		for topic, have := range byTopic {
			if seen := b.widestView(topic); len(seen) > len(have) {
				byTopic[topic] = seen
			}
			missing = missing || len(byTopic[topic]) == 0
		}
		if !missing || time.Now().After(deadline) {
			break
		}
		time.Sleep(assignReadEvery)
	}
	merged := partitions[:0:0]
	for _, ps := range byTopic {
		merged = append(merged, ps...)
	}
	return b.GroupBalancer.AssignGroups(members, merged)
}

// widestView asks every broker for topic's partitions, at once, and returns the longest list
// any of them answered (none: nil). A broker that fails is reported and left out.
func (b fullViewBalancer) widestView(topic string) []kafkago.Partition {
	var mu sync.Mutex
	var widest []kafkago.Partition
	var wg sync.WaitGroup
	for _, addr := range b.brokers {
		wg.Go(func() {
			ps, err := readPartitions(addr, topic)
			if errors.Is(err, kafkago.UnknownTopicOrPartition) {
				return // this broker does not know the topic (yet): what the wait is for
			}
			if err != nil {
				b.onError("fetch", fmt.Errorf("group leader reading the partitions of %s from %s: %w", topic, addr, err))
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if len(ps) > len(widest) {
				widest = ps
			}
		})
	}
	wg.Wait()
	return widest
}

// readPartitions asks the broker at addr, on a connection of its own (kafka-go's transport
// would answer from its metadata cache), which partitions topic has, within assignDial.
func readPartitions(addr, topic string) ([]kafkago.Partition, error) {
	ctx, cancel := context.WithTimeout(context.Background(), assignDial)
	defer cancel()
	return kafkago.DefaultDialer.LookupPartitions(ctx, "tcp", addr, topic)
}
