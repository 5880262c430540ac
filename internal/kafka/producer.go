package kafka

import (
	"context"
	"errors"
	"fmt"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/qgate/qgate/internal/queue"
)

// ErrUnavailable reports that the broker did not acknowledge a write: the caller must treat the
// messages as not accepted (they may still land; a retry can duplicate, never lose).
var ErrUnavailable = errors.New("kafka unavailable")

// Producer writes messages with acks=all. It is safe for concurrent use; concurrent callers'
// messages share produce requests, which is where its throughput comes from.
type Producer struct {
	w *kafkago.Writer
}

// ProducerOptions tune the writer.
type ProducerOptions struct {
	// Linger is how long a partition batch waits for more messages (default 1ms).
	Linger time.Duration
	// MaxMessageBytes bounds one produce batch in bytes (default 8 MiB).
	MaxMessageBytes int64
}

// NewProducer returns a producer for topic on brokers.
func NewProducer(brokers []string, topic string, opts ProducerOptions) *Producer {
	if opts.Linger <= 0 {
		opts.Linger = time.Millisecond
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 8 << 20
	}
	return &Producer{w: &kafkago.Writer{
		Addr:            kafkago.TCP(brokers...),
		Topic:           topic,
		Balancer:        &kafkago.Hash{},
		RequiredAcks:    kafkago.RequireAll,
		BatchSize:       128, // kafka-go sizes every partition batch for this many messages: larger costs memory per batch
		BatchBytes:      opts.MaxMessageBytes,
		BatchTimeout:    opts.Linger,
		MaxAttempts:     3,
		WriteBackoffMin: 20 * time.Millisecond,
		WriteBackoffMax: 250 * time.Millisecond,
		ReadTimeout:     10 * time.Second,
		WriteTimeout:    10 * time.Second,
	}}
}

// Publish writes msgs in one call and returns only once the broker acknowledged every one of
// them with acks=all, or an error. On error, Failed reports which messages were not written.
func (p *Producer) Publish(ctx context.Context, msgs []queue.Message) error {
	km := make([]kafkago.Message, len(msgs))
	for i, m := range msgs {
		km[i] = kafkago.Message{Key: m.Key, Value: m.Value}
	}
	if err := p.w.WriteMessages(ctx, km...); err != nil {
		var werrs kafkago.WriteErrors
		if errors.As(err, &werrs) {
			failed := make([]bool, len(msgs))
			for i, e := range werrs {
				failed[i] = e != nil
			}
			return &PublishError{Failed: failed, Err: fmt.Errorf("%w: %v", ErrUnavailable, err)}
		}
		return &PublishError{Err: fmt.Errorf("%w: %v", ErrUnavailable, err)}
	}
	return nil
}

// Close flushes and closes the writer.
func (p *Producer) Close() error { return p.w.Close() }

// PublishError is a failed Publish. Failed[i] tells whether message i was not acknowledged; a
// nil Failed means none can be assumed acknowledged.
type PublishError struct {
	Failed []bool
	Err    error
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
