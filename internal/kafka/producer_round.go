package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	apiversionsAPI "github.com/segmentio/kafka-go/protocol/apiversions"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"
)

// Produce rounds: one request per leader per round, acks=all, with what a failure means for
// each batch (not written, or may have been written).

// flush sends the requests' messages and answers every request.
func (p *Producer) flush(batch []*pubReq) {
	deadline := batch[0].deadline
	for _, r := range batch[1:] {
		if r.deadline.Before(deadline) {
			deadline = r.deadline
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()

	parts, err := p.assign(ctx, batch)
	if metadataFailed(ctx, err) {
		// The transport's pool holds a failed metadata read (its bootstrap brokers did not
		// answer) and would serve that error for up to ~6 s: ask the other brokers, now.
		p.avoidBootstrap()
		if parts, err = p.assign(ctx, batch); metadataFailed(ctx, err) {
			p.avoidBootstrap() // the next flush starts from the brokers not asked this time
		}
	}
	if err == nil && p.suspect {
		if err = p.probe(ctx); err == nil {
			p.suspect = false
		}
	}
	if err != nil {
		// Nothing was sent: metadata alone failed.
		for _, r := range batch {
			r.finish(&PublishError{Err: fmt.Errorf("%w: %w", ErrUnavailable, err)})
		}
		return
	}
	p.produce(ctx, parts)
	var silent map[int32]bool
	for _, pb := range parts {
		p.suspect = p.suspect || pb.unknown
		for _, id := range pb.silent {
			if silent == nil {
				silent = make(map[int32]bool)
			}
			silent[id] = true
		}
	}
	if silent != nil {
		// A leader that does not answer may be down or stalled and about to be fenced; a
		// stalled one's partitions then move without any broker answering NOT_LEADER. Read the
		// leaders afresh, from another broker (producer_bootstrap.go).
		p.avoid(silent)
	}

	// Answer each request: Failed per message from its partition's outcome.
	var failed map[*pubReq]*PublishError
	for _, pb := range parts {
		if pb.err == nil {
			continue
		}
		if failed == nil {
			failed = make(map[*pubReq]*PublishError)
		}
		for _, o := range pb.owners {
			pe := failed[o.req]
			if pe == nil {
				pe = &PublishError{Failed: make([]bool, len(o.req.msgs)), Err: fmt.Errorf("%w: %w", ErrUnavailable, pb.err)}
				failed[o.req] = pe
			}
			pe.Failed[o.idx] = true
			pe.Unknown = pe.Unknown || pb.unknown
		}
	}
	for _, r := range batch {
		if pe, bad := failed[r]; bad {
			r.finish(pe)
		} else {
			r.finish(nil)
		}
	}
}

// metadataFailed reports whether err is a failed metadata read of the transport with time left
// to ask elsewhere.
func metadataFailed(ctx context.Context, err error) bool {
	var merr *metadataError
	return errors.As(err, &merr) && ctx.Err() == nil
}

// probe asks the cluster for its API versions, on a connection of the transport's: it
// succeeds only if a broker answers before ctx's deadline.
func (p *Producer) probe(ctx context.Context) error {
	if _, err := p.tr.RoundTrip(ctx, p.addr, &apiversionsAPI.Request{}); err != nil {
		return fmt.Errorf("the broker did not answer a probe after an unanswered request: %w", err)
	}
	return nil
}

// Record batch size estimates (record format v2): a record's varint lengths, attributes,
// deltas and header count; a batch's fixed header.
const (
	recordOverhead = 24
	batchOverhead  = 61
)

// produce sends the partition batches in rounds: each round is one request per leader with at
// most one batch per partition (a partition with more batches sends them in later rounds, in
// order). Once a partition's batch fails, its later batches are not sent. It sets each batch's
// err, and its unknown when a request carrying it was sent and not answered.
func (p *Producer) produce(ctx context.Context, parts []*partBatch) {
	queues := map[int32][]*partBatch{}
	var order []int32
	for _, pb := range parts {
		if _, ok := queues[pb.partition]; !ok {
			order = append(order, pb.partition)
		}
		queues[pb.partition] = append(queues[pb.partition], pb)
	}
	for {
		var round []*partBatch
		for _, part := range order {
			if q := queues[part]; len(q) > 0 {
				round = append(round, q[0])
			}
		}
		if len(round) == 0 {
			return
		}
		p.produceRound(ctx, round)
		for _, pb := range round {
			q := queues[pb.partition][1:]
			if pb.err != nil {
				for _, later := range q {
					later.err = fmt.Errorf("not sent: an earlier batch of partition %d failed: %w", pb.partition, pb.err)
				}
				q = nil
			}
			queues[pb.partition] = q
		}
	}
}

// produceRound sends batches of distinct partitions, one request per leader, retrying what
// failed with a retriable error within ctx's deadline.
func (p *Producer) produceRound(ctx context.Context, parts []*partBatch) {
	todo := parts
	for attempt := 0; ; attempt++ {
		byLeader := map[int32][]*partBatch{}
		var order []int32
		for _, pb := range todo {
			if _, ok := byLeader[pb.leader]; !ok {
				order = append(order, pb.leader)
			}
			byLeader[pb.leader] = append(byLeader[pb.leader], pb)
		}
		var wg sync.WaitGroup
		for _, leader := range order {
			group := byLeader[leader]
			send := func() { p.send(ctx, group) }
			if len(order) == 1 {
				send()
			} else {
				wg.Go(send)
			}
		}
		wg.Wait()

		var retry []*partBatch
		stale := false
		for _, pb := range todo {
			if pb.err != nil && retriable(pb.err) {
				retry = append(retry, pb)
				stale = stale || staleMetadata(pb.err)
			}
		}
		if len(retry) == 0 || (p.opts.MaxAttempts > 0 && attempt+1 >= p.opts.MaxAttempts) {
			return
		}
		delay := min(time.Duration(20<<min(attempt, 4))*time.Millisecond, maxRetryDelay)
		if dl, _ := ctx.Deadline(); time.Until(dl) < delay+minSendTime {
			return
		}
		time.Sleep(delay)
		if stale {
			// kafka-go's transport serves metadata from a cache it refreshes every ~6 s, longer
			// than a failover, and routes the produce by it: drop the cache, so the read below
			// (and the retry's routing) asks the cluster where the leaders are now.
			p.tr.CloseIdleConnections()
		}
		// The leaders may have moved: read them again.
		if m, err := p.tr.RoundTrip(ctx, p.addr, &metadataAPI.Request{TopicNames: []string{p.topic}}); err == nil {
			for _, t := range m.(*metadataAPI.Response).Topics {
				if t.Name != p.topic {
					continue
				}
				for _, tp := range t.Partitions {
					for _, pb := range retry {
						if pb.partition == tp.PartitionIndex {
							pb.leader = tp.LeaderID
						}
					}
				}
			}
		}
		for _, pb := range retry {
			pb.err = nil
		}
		todo = retry
	}
}

// send writes one produce request carrying group (partitions of one leader) and sets each
// batch's err, and its unknown when the request may have reached the broker without an answer.
func (p *Producer) send(ctx context.Context, group []*partBatch) {
	timeout := int32(10_000)
	if dl, ok := ctx.Deadline(); ok {
		// The broker's own wait for in-sync replicas: half the time left, as kafka-go does, so
		// its answer (even a timeout) can come back before the deadline.
		timeout = int32(max(time.Until(dl)/2, time.Millisecond) / time.Millisecond)
	}
	req := &produceAPI.Request{
		Acks:    int16(kafkago.RequireAll),
		Timeout: timeout,
		Topics:  []produceAPI.RequestTopic{{Topic: p.topic, Partitions: make([]produceAPI.RequestPartition, len(group))}},
	}
	for i, pb := range group {
		req.Topics[0].Partitions[i] = produceAPI.RequestPartition{
			Partition: pb.partition,
			RecordSet: protocol.RecordSet{Records: &records{msgs: pb.recs}},
		}
	}
	m, err := p.tr.RoundTrip(ctx, p.addr, req)
	if err != nil {
		for _, pb := range group {
			pb.err = err
		}
		// A request refused before it was written (no leader known, no connection) did not
		// reach the broker; anything else may have.
		var perr *produceAPI.Error
		if !errors.As(err, &perr) {
			for _, pb := range group {
				pb.silent = append(pb.silent, pb.leader)
				pb.unknown = pb.unknown || !isDialError(err)
			}
		}
		return
	}
	res := m.(*produceAPI.Response)
	seen := make(map[int32]bool, len(group))
	for _, t := range res.Topics {
		if t.Topic != p.topic {
			continue
		}
		for _, rp := range t.Partitions {
			seen[rp.Partition] = true
			if rp.ErrorCode == 0 {
				continue
			}
			for _, pb := range group {
				if pb.partition == rp.Partition {
					pb.err = kafkago.Error(rp.ErrorCode)
					pb.unknown = pb.unknown || mayBeWritten(rp.ErrorCode)
				}
			}
		}
	}
	for _, pb := range group {
		if !seen[pb.partition] {
			pb.err = fmt.Errorf("no answer for partition %d in the produce response", pb.partition)
			pb.unknown = true
		}
	}
}
