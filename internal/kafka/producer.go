package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol"
	apiversionsAPI "github.com/segmentio/kafka-go/protocol/apiversions"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"

	"github.com/qgate/qgate/internal/queue"
)

// ErrUnavailable reports that the broker did not acknowledge a write: the caller must treat the
// messages as not accepted. Whether they may still land is told by PublishError.Unknown.
var ErrUnavailable = errors.New("kafka unavailable")

// Producer writes messages with acks=all. It is safe for concurrent use.
//
// It group-commits: Publish queues its messages and one flusher goroutine sends everything
// queued as one produce request per partition leader (every partition in the same request),
// waits for the acks, and answers each caller; what arrives meanwhile goes in the next request.
// One request is in flight per producer at a time, so messages of one key stay in order.
//
// A Publish is bounded by its ctx: the produce request carrying its messages uses the earliest
// deadline of the callers it carries, so the broker's answer (or its absence) is known by the
// time the caller must answer. Messages whose caller gave up before they were sent are never
// sent (PublishError.Unknown is false: they did not land). Messages that were on the wire when
// the deadline passed may or may not have been written (Unknown is true).
type Producer struct {
	topic string
	addr  net.Addr
	// tr is the producer's own transport: forgetting its cached metadata (staleMetadata) then
	// touches no other client.
	tr   *kafkago.Transport
	opts ProducerOptions

	mu      sync.Mutex
	pending []*pubReq
	closed  bool
	wake    chan struct{}
	stopped chan struct{}
	rr      uint32
	// suspect is set (by the flusher only) when a request went unanswered: the broker may be
	// stalled. The next produce is sent only after a probe shows the broker answering, so that
	// a stall costs at most one request whose fate is unknown; the rest are "not written".
	suspect bool
}

// ProducerOptions tune the producer.
type ProducerOptions struct {
	// MaxMessageBytes bounds the records one flush takes from the queue, in bytes (default
	// 8 MiB); a single Publish larger than that is still sent, alone.
	MaxMessageBytes int64
	// MaxBatchBytes bounds one partition's record batch in a produce request (default
	// 1,000,000: under Kafka's default message.max.bytes of 1,048,588, which applies to a
	// record batch). A partition's records beyond it go in the next request, in order.
	MaxBatchBytes int64
	// Timeout bounds a Publish whose ctx has no deadline (default 10s).
	Timeout time.Duration
	// MaxAttempts bounds how often a produce is tried when the broker answers with a retriable
	// error or the connection fails (default 0: as often as the deadline allows). A leader
	// failover takes seconds (the controller fences a dead broker after its session timeout),
	// so a produce keeps trying, on fresh metadata, until its deadline.
	MaxAttempts int
	// Linger is accepted for compatibility and ignored: the producer does not wait for more
	// messages; what queues while a request is in flight forms the next one.
	Linger time.Duration
}

// minSendTime is the least time left before a caller's deadline for its messages to be sent:
// with less, they are answered "not written" instead of going out with a deadline they cannot
// meet (and shortening the deadline of the request that would carry them).
const minSendTime = 20 * time.Millisecond

// NewProducer returns a producer for topic on brokers.
func NewProducer(brokers []string, topic string, opts ProducerOptions) *Producer {
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 8 << 20
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = 1_000_000
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	p := &Producer{
		topic:   topic,
		addr:    kafkago.TCP(brokers...),
		tr:      &kafkago.Transport{},
		opts:    opts,
		wake:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
	go p.run()
	return p
}

// pubReq is one Publish call waiting for its messages to be acknowledged.
type pubReq struct {
	msgs     []queue.Message
	deadline time.Time
	// state: reqQueued until the flusher takes it (reqSent) or its caller gives up first
	// (reqAbandoned); whoever moves it first decides.
	state atomic.Int32
	done  chan struct{}
	err   error // set before done is closed
}

const (
	reqQueued int32 = iota
	reqSent
	reqAbandoned
)

var errClosed = errors.New("producer closed")

// Publish writes msgs and returns only once the broker acknowledged every one of them with
// acks=all, or an error. On error, a *PublishError reports which messages were not written and
// whether the others' fate is unknown.
func (p *Producer) Publish(ctx context.Context, msgs []queue.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(p.opts.Timeout)
	}
	r := &pubReq{msgs: msgs, deadline: deadline, done: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return &PublishError{Err: fmt.Errorf("%w: %w", ErrUnavailable, errClosed)}
	}
	p.pending = append(p.pending, r)
	select {
	case p.wake <- struct{}{}:
	default:
	}
	p.mu.Unlock()

	select {
	case <-r.done:
		return r.err
	case <-ctx.Done():
	}
	if r.state.CompareAndSwap(reqQueued, reqAbandoned) {
		// Never handed to the broker: it did not land and will not.
		return &PublishError{Err: fmt.Errorf("%w: not sent: %w", ErrUnavailable, context.Cause(ctx))}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		// On the wire with a deadline no later than ours: its outcome is due now. Wait for it
		// briefly so that the answer says what happened rather than "unknown".
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-r.done:
			return r.err
		case <-t.C:
		}
	}
	return &PublishError{Err: fmt.Errorf("%w: no acknowledgement before the caller gave up: %w", ErrUnavailable, context.Cause(ctx)), Unknown: true}
}

// Close sends what is queued, waits for it, and stops the producer.
func (p *Producer) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.wake)
	}
	p.mu.Unlock()
	<-p.stopped
	return nil
}

// PublishError is a failed Publish. Failed[i] tells whether message i was not acknowledged; a
// nil Failed means none can be assumed acknowledged. Unknown says that the not-acknowledged
// messages were sent and may still have been written by the broker (a timeout, a connection
// lost mid-request); when false they were refused or never sent.
type PublishError struct {
	Failed  []bool
	Unknown bool
	Err     error
}

func (e *PublishError) Error() string { return e.Err.Error() }
func (e *PublishError) Unwrap() error { return e.Err }

// NotWritten reports whether message i must be treated as not accepted.
func (e *PublishError) NotWritten(i int) bool {
	if e.Failed == nil || i >= len(e.Failed) {
		return true
	}
	return e.Failed[i]
}

// MaybeWritten reports whether messages that were not acknowledged may nevertheless be on the
// log (true), or certainly are not (false).
func (e *PublishError) MaybeWritten() bool { return e.Unknown }

func (p *Producer) run() {
	defer close(p.stopped)
	for {
		_, open := <-p.wake
		for {
			batch := p.take()
			if len(batch) == 0 {
				break
			}
			p.flush(batch)
		}
		if !open {
			p.mu.Lock()
			rest := p.pending
			p.pending = nil
			p.mu.Unlock()
			for _, r := range rest {
				if r.state.CompareAndSwap(reqQueued, reqSent) {
					r.finish(&PublishError{Err: fmt.Errorf("%w: %w", ErrUnavailable, errClosed)})
				}
			}
			return
		}
	}
}

func (r *pubReq) finish(err error) {
	r.err = err
	close(r.done)
}

// take removes from the queue the requests of the next produce: in arrival order, up to the
// byte bound (at least one). Requests whose caller gave up are dropped; those too close to their
// deadline are answered "not written".
func (p *Producer) take() []*pubReq {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	var batch []*pubReq
	var bytes int64
	n := 0
	for ; n < len(p.pending); n++ {
		r := p.pending[n]
		size := int64(0)
		for _, m := range r.msgs {
			size += int64(len(m.Key) + len(m.Value))
		}
		if len(batch) > 0 && bytes+size > p.opts.MaxMessageBytes {
			break
		}
		if r.deadline.Sub(now) < minSendTime {
			if r.state.CompareAndSwap(reqQueued, reqSent) {
				r.finish(&PublishError{Err: fmt.Errorf("%w: not sent: too little time left before the deadline", ErrUnavailable)})
			}
			continue
		}
		if !r.state.CompareAndSwap(reqQueued, reqSent) {
			continue // abandoned
		}
		batch = append(batch, r)
		bytes += size
	}
	clear(p.pending[:n])
	p.pending = append(p.pending[:0], p.pending[n:]...)
	return batch
}

// partBatch is the records of one partition in one produce, in the order they were queued.
type partBatch struct {
	partition int32
	leader    int32
	bytes     int64 // estimated size of the record batch
	recs      []*queue.Message
	owners    []owner // owners[i]: whose message recs[i] is
	err       error
	unknown   bool // a request carrying it was sent and not answered: it may be on the log
}

type owner struct {
	req *pubReq
	idx int
}

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
	for _, pb := range parts {
		p.suspect = p.suspect || pb.unknown
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

// assign maps every message to its partition (kafka-go's Hash balancer: FNV-1a of the key,
// as Sarama does) and groups them by partition.
func (p *Producer) assign(ctx context.Context, batch []*pubReq) ([]*partBatch, error) {
	m, err := p.tr.RoundTrip(ctx, p.addr, &metadataAPI.Request{TopicNames: []string{p.topic}})
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
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

// probe asks the cluster for its API versions, on a connection of the transport's: it
// succeeds only if a broker answers before ctx's deadline.
func (p *Producer) probe(ctx context.Context) error {
	if _, err := p.tr.RoundTrip(ctx, p.addr, &apiversionsAPI.Request{}); err != nil {
		return fmt.Errorf("the broker did not answer a probe after an unanswered request: %w", err)
	}
	return nil
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
		if !errors.As(err, &perr) && !isDialError(err) {
			for _, pb := range group {
				pb.unknown = true
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

// maxRetryDelay caps the pause between two tries of a produce.
const maxRetryDelay = 250 * time.Millisecond

// staleMetadata reports whether err says the produce went to a broker that does not lead the
// partition (any more), or to no broker at all: the transport's cached metadata is out of date.
func staleMetadata(err error) bool {
	var kerr kafkago.Error
	if errors.As(err, &kerr) {
		switch kerr {
		case kafkago.NotLeaderForPartition, kafkago.LeaderNotAvailable, kafkago.BrokerNotAvailable,
			kafkago.UnknownTopicOrPartition, kafkago.FencedLeaderEpoch, kafkago.UnknownLeaderEpoch,
			kafkago.KafkaStorageError:
			return true
		}
		return false
	}
	// No kafka error code: the request was not routed (no leader known) or the connection to
	// the leader failed (refused, reset, closed): it may be gone.
	return true
}

// mayBeWritten reports whether a produce error code means the leader appended the records
// but could not confirm acks=all in time: they may still be committed (once the in-sync
// replicas catch up or shrink) and read by consumers.
func mayBeWritten(code int16) bool {
	switch kafkago.Error(code) {
	case kafkago.RequestTimedOut, kafkago.NotEnoughReplicasAfterAppend:
		return true
	}
	return false
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// retriable reports whether a failed produce may succeed if tried again.
func retriable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var kerr kafkago.Error
	if errors.As(err, &kerr) {
		return kerr.Temporary()
	}
	var perr *produceAPI.Error // e.g. the leaders moved between the metadata and the request
	if errors.As(err, &perr) {
		return true
	}
	var nerr net.Error
	return errors.As(err, &nerr) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// records reads a partition batch's messages as protocol records without copying them.
type records struct {
	msgs  []*queue.Message
	i     int
	rec   protocol.Record
	key   bytesReader
	value bytesReader
}

func (r *records) ReadRecord() (*protocol.Record, error) {
	if r.i >= len(r.msgs) {
		return nil, io.EOF
	}
	m := r.msgs[r.i]
	r.i++
	r.rec = protocol.Record{}
	if m.Key != nil {
		r.key.Reset(m.Key)
		r.rec.Key = &r.key
	}
	if m.Value != nil {
		r.value.Reset(m.Value)
		r.rec.Value = &r.value
	}
	return &r.rec, nil
}

type bytesReader struct{ bytes.Reader }

func (*bytesReader) Close() error { return nil }
