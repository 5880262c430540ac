package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"

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
	// brokers are the configured bootstrap brokers; current is the list the transport uses now
	// (all of them, or those that answered: producer_bootstrap.go) and addr the same as an
	// address, both set by the flusher only.
	brokers    []string
	current    []string
	addr       net.Addr
	brokerAddr map[int32]string // node ID → host:port, from the last metadata read
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
		brokers: brokers,
		current: brokers,
		addr:    kafkago.TCP(brokers...),
		tr:      &kafkago.Transport{},
		opts:    opts,
		wake:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
	go p.run()
	return p
}

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

func (*bytesReader) Close() error { return nil }
