package kafka

import (
	"context"

	kafkago "github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"

	"github.com/qgate/qgate/internal/queue"
)

// Partitioning: which partition and leader each message goes to (kafka-go's hash, so keys land
// where kafka-go's Writer would put them).

// partBatch is the records of one partition in one produce, in the order they were queued.
type partBatch struct {
	partition int32
	leader    int32
	bytes     int64 // estimated size of the record batch
	recs      []*queue.Message
	owners    []owner // owners[i]: whose message recs[i] is
	err       error
	unknown   bool // a request carrying it was sent and not answered: it may be on the log
	// silent are the leaders a request carrying it reached no answer from at all (refused,
	// reset, timed out): they may be down or stalled. A broker that answered, even with an
	// error, is not among them.
	silent []int32
}

type owner struct {
	req *pubReq
	idx int
}

// assign maps every message to its partition (kafka-go's Hash balancer: FNV-1a of the key,
// as Sarama does) and groups them by partition.
func (p *Producer) assign(ctx context.Context, batch []*pubReq) ([]*partBatch, error) {
	m, err := p.tr.RoundTrip(ctx, p.addr, &metadataAPI.Request{TopicNames: []string{p.topic}})
	if err != nil {
		return nil, &metadataError{err}
	}
	p.rememberBrokers(m.(*metadataAPI.Response))
	var topic *metadataAPI.ResponseTopic
	for i := range m.(*metadataAPI.Response).Topics {
		if t := &m.(*metadataAPI.Response).Topics[i]; t.Name == p.topic {
			topic = t
		}
	}
	if topic == nil {
		return nil, kafkago.UnknownTopicOrPartition
	}
	if topic.ErrorCode != 0 {
		return nil, kafkago.Error(topic.ErrorCode)
	}
	n := len(topic.Partitions)
	if n == 0 {
		return nil, kafkago.UnknownTopicOrPartition
	}
	leaders := make([]int32, n)
	for i := range leaders {
		leaders[i] = -1
	}
	for _, tp := range topic.Partitions {
		if int(tp.PartitionIndex) < n {
			leaders[tp.PartitionIndex] = tp.LeaderID
		}
	}
	byPart := make([]*partBatch, n)
	var parts []*partBatch
	for _, r := range batch {
		for i := range r.msgs {
			msg := &r.msgs[i]
			var part int
			if msg.Key == nil {
				part = int(p.rr % uint32(n))
				p.rr++
			} else {
				part = hashPartition(msg.Key, n)
			}
			size := int64(len(msg.Key)+len(msg.Value)) + recordOverhead
			pb := byPart[part]
			if pb == nil || (len(pb.recs) > 0 && pb.bytes+size > p.opts.MaxBatchBytes-batchOverhead) {
				// A partition's next batch goes in a later request, after this one.
				pb = &partBatch{partition: int32(part), leader: leaders[part]}
				byPart[part] = pb
				parts = append(parts, pb)
			}
			pb.bytes += size
			pb.recs = append(pb.recs, msg)
			pb.owners = append(pb.owners, owner{r, i})
		}
	}
	return parts, nil
}

// hashPartition is kafka-go's Hash balancer (and Sarama's): FNV-1a 32 of the key as an int32,
// modulo the partition count, made positive. Kept identical so a key's partition does not
// change with the producer.
func hashPartition(key []byte, n int) int {
	h := uint32(2166136261)
	for _, c := range key {
		h ^= uint32(c)
		h *= 16777619
	}
	part := int32(h) % int32(n)
	if part < 0 {
		part = -part
	}
	return int(part)
}

// metadataError is a failed metadata read of the transport (as opposed to metadata that says
// the topic or its partitions are missing).
type metadataError struct{ err error }

func (e *metadataError) Error() string { return "metadata: " + e.err.Error() }
func (e *metadataError) Unwrap() error { return e.err }
