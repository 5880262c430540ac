package kafka

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"golang.org/x/time/rate"

	"github.com/qgate/qgate/internal/queue"
)

// Consumer reads a topic as a member of a consumer group and commits offsets only when told:
// offsets are committed once the outcome of a record is durable, never before.
type Consumer struct {
	r       *kafkago.Reader
	fetch   func(context.Context) (kafkago.Message, error) // r.FetchMessage; a seam for tests
	records chan queue.Record
	onError func(op string, err error)
	// errPace bounds how fast the pump goes round on errors (nil: no bound). See pump.
	errPace *rate.Limiter
	stop    context.CancelFunc
	done    chan struct{}
}

// ConsumerOptions tune a consumer.
type ConsumerOptions struct {
	// MaxWait is how long the broker may hold a fetch while it has no new data (default 20ms;
	// qgate passes config.ConsumerFetchWait, 1.5 s). A broker — kfake included — answers a held
	// fetch as soon as a record arrives, so a long wait costs no latency and cuts idle polling:
	// at 20 ms the 24 partition fetchers of a node cost ~0.2 cores with no traffic.
	MaxWait time.Duration
	Buffer  int // records read ahead (default 1000)
	// PartitionWatch is how often the group's member reads the topic's partitions, and
	// rebalances when their number changed since the generation began (default 5 s).
	PartitionWatch time.Duration

	// OnError, when set, hears every failure of the consumer: op is "fetch" (joining the group,
	// reading a partition: the consumer keeps trying) or "commit" (Commit returned err). It is
	// called on the consumer's goroutines and must not block. The errors name brokers, topics,
	// partitions and offsets, never a record's content.
	OnError func(op string, err error)
}

// NewConsumer joins group on topic and starts reading into Records().
func NewConsumer(brokers []string, group, topic string, opts ConsumerOptions) *Consumer {
	if opts.MaxWait <= 0 {
		opts.MaxWait = 20 * time.Millisecond
	}
	if opts.Buffer <= 0 {
		opts.Buffer = 1000
	}
	if opts.PartitionWatch <= 0 {
		opts.PartitionWatch = 5 * time.Second
	}
	onError := opts.OnError
	if onError == nil {
		onError = func(string, error) {}
	}
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers:           brokers,
		GroupID:           group,
		Topic:             topic,
		StartOffset:       kafkago.FirstOffset,
		MinBytes:          1,
		MaxBytes:          16 << 20,
		MaxWait:           opts.MaxWait,
		ReadBackoffMin:    10 * time.Millisecond,
		ReadBackoffMax:    200 * time.Millisecond,
		HeartbeatInterval: time.Second,
		SessionTimeout:    10 * time.Second,
		RebalanceTimeout:  10 * time.Second,
		JoinGroupBackoff:  500 * time.Millisecond,
		QueueCapacity:     opts.Buffer,
		CommitInterval:    0, // synchronous, explicit commits
		// A group leader that cannot read the topic's partitions when it assigns them (the topic
		// unknown to the broker it asks — one just restarted after a lost quorum) assigns none,
		// and without a watch the group then stays stable with nobody reading anything: seen on
		// the cluster, the dispatcher read none of 532 jobs for 2 minutes. The watch reads the
		// partitions every PartitionWatch and rebalances when their number changed (or the read
		// failed).
		WatchPartitionChanges:  true,
		PartitionWatchInterval: opts.PartitionWatch,
		// kafka-go's defaults (range, then round robin), each assigning from every broker's view
		// of the topic rather than the coordinator's alone (consumer_balancer.go).
		GroupBalancers: []kafkago.GroupBalancer{
			fullViewBalancer{GroupBalancer: kafkago.RangeGroupBalancer{}, brokers: brokers, onError: onError},
			fullViewBalancer{GroupBalancer: kafkago.RoundRobinGroupBalancer{}, brokers: brokers, onError: onError},
		},
		// kafka-go retries a failed group join or partition read by itself and only logs it.
		ErrorLogger: kafkago.LoggerFunc(func(format string, args ...any) { onError("fetch", fmt.Errorf(format, args...)) }),
	})
	ctx, cancel := context.WithCancel(context.Background())
	c := &Consumer{r: r, fetch: r.FetchMessage, records: make(chan queue.Record, opts.Buffer), onError: onError,
		errPace: newErrPace(opts.Buffer), stop: cancel, done: make(chan struct{})}
	go c.pump(ctx)
	return c
}

// errorsPerSecond bounds the pump's pace on errors once a burst of a full read-ahead queue is
// spent: a guard against an error returned at once forever (kafka-go's own readers back off,
// each partition's sending at most ~10 a second). Above what 24 partitions' readers send during
// an outage, so the queue does not fill behind the limiter, and a loop at this pace costs
// little.
const errorsPerSecond = 1000

// newErrPace lets a read-ahead queue full of errors (buffer of them) drain at once.
func newErrPace(buffer int) *rate.Limiter {
	return rate.NewLimiter(errorsPerSecond, buffer+64)
}

func (c *Consumer) pump(ctx context.Context) {
	defer close(c.done)
	defer close(c.records)
	for {
		m, err := c.fetch(ctx)
		if err != nil {
			// Only Close ends the pump. kafka-go also hands out errors that wrap
			// context.Canceled while it is open (a group generation's calls cut short, e.g.
			// while the coordinator moves): ending on those closed Records() and silently
			// stopped the stage reading it, with the process still serving.
			if ctx.Err() != nil || errors.Is(err, io.EOF) {
				return
			}
			c.onError("fetch", fmt.Errorf("fetch: %w", err))
			// No fixed pause here. kafka-go's partition readers queue their errors in the
			// read-ahead queue (after 3 failed attempts, one per backoff of at most
			// ReadBackoffMax) ahead of the records that follow; a pause of 200 ms per error
			// (as here until 2026-12-02) drained a queue filled during a broker outage at
			// 5 errors/s, and deliveries waited ~60 s after the brokers were back.
			if c.errPace != nil {
				if c.errPace.Wait(ctx) != nil {
					return
				}
			}
			continue
		}
		rec := queue.Record{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value}
		select {
		case c.records <- rec:
		case <-ctx.Done():
			return
		}
	}
}

// Records delivers fetched records in partition order. It is closed by Close.
func (c *Consumer) Records() <-chan queue.Record { return c.records }

// Commit marks recs processed: for each partition, the highest record's offset + 1 is committed.
func (c *Consumer) Commit(ctx context.Context, recs ...queue.Record) error {
	if len(recs) == 0 {
		return nil
	}
	msgs := make([]kafkago.Message, len(recs))
	for i, r := range recs {
		msgs[i] = kafkago.Message{Topic: r.Topic, Partition: r.Partition, Offset: r.Offset}
	}
	if err := c.r.CommitMessages(ctx, msgs...); err != nil {
		err = fmt.Errorf("commit offsets: %w", err)
		if !errors.Is(err, context.Canceled) { // the caller stopping is no failure
			c.onError("commit", err)
		}
		return err
	}
	return nil
}

// Close stops fetching and leaves the group. Records fetched but not committed are read again
// by whichever member owns their partition next.
func (c *Consumer) Close() error {
	c.stop()
	<-c.done
	return c.r.Close()
}
