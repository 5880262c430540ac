package kafka

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/qgate/qgate/internal/queue"
	kafkago "github.com/segmentio/kafka-go"
)

// embeddedBroker starts a kfake broker for one test, and a 60 s context for the test's calls;
// both end with the test.
func embeddedBroker(t *testing.T) (*Embedded, context.Context) {
	t.Helper()
	e, err := StartEmbedded(0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return e, ctx
}

// TestHeldFetchIsAnsweredWhenARecordArrives is why qgate's consumers can use a long fetch wait
// on the embedded broker (config.ConsumerFetchWait, issue #12): with MaxWait 1.5 s kfake holds
// each fetch of an idle partition for 0.5 s, and a record produced meanwhile must end the hold
// at once — through two hops (router and dispatcher are two consumer groups, the first
// publishing to the second's topic), as in qgate. Were holds answered only at their timeout,
// a record produced 50–250 ms into one would wait 250–450 ms per hop.
func TestHeldFetchIsAnsweredWhenARecordArrives(t *testing.T) {
	e, ctx := embeddedBroker(t)
	if _, err := EnsureTopics(ctx, e.Addrs(), TopicSpec{Name: "in", Partitions: 4, ReplicationFactor: 1}, TopicSpec{Name: "out", Partitions: 4, ReplicationFactor: 1}); err != nil {
		t.Fatal(err)
	}
	const wait = 1500 * time.Millisecond
	in := NewProducer(e.Addrs(), "in", ProducerOptions{})
	defer in.Close()
	out := NewProducer(e.Addrs(), "out", ProducerOptions{})
	defer out.Close()
	first := NewConsumer(e.Addrs(), "hop1", "in", ConsumerOptions{MaxWait: wait})
	defer first.Close()
	second := NewConsumer(e.Addrs(), "hop2", "out", ConsumerOptions{MaxWait: wait})
	defer second.Close()
	relayErr := make(chan error, 1)
	go func() { // hop 1: consume "in", publish to "out", commit
		for r := range first.Records() {
			if err := out.Publish(ctx, []queue.Message{{Key: r.Key, Value: r.Value}}); err != nil {
				relayErr <- err
				return
			}
			if err := first.Commit(ctx, r); err != nil {
				relayErr <- err
				return
			}
		}
	}()
	receive := func() queue.Record {
		t.Helper()
		select {
		case r := <-second.Records():
			if err := second.Commit(ctx, r); err != nil {
				t.Fatal(err)
			}
			return r
		case err := <-relayErr:
			t.Fatalf("relay: %v", err)
		case <-ctx.Done():
			t.Fatal("no record within 60 s")
		}
		return queue.Record{}
	}
	// Both groups joined and every partition has a fetch in flight once one record per
	// partition went through.
	for i := range 8 {
		if err := in.Publish(ctx, []queue.Message{{Key: fmt.Appendf(nil, "warm%d", i), Value: []byte("warm")}}); err != nil {
			t.Fatal(err)
		}
		receive()
	}
	var lat []time.Duration
	for i := range 40 {
		// Produced 50–250 ms into the hold of the fetches the previous record started.
		time.Sleep(50*time.Millisecond + rand.N(200*time.Millisecond))
		key := fmt.Appendf(nil, "k%d", i)
		sent := time.Now()
		if err := in.Publish(ctx, []queue.Message{{Key: key, Value: key}}); err != nil {
			t.Fatal(err)
		}
		if r := receive(); string(r.Value) != string(key) {
			t.Fatalf("record %d: got %q", i, r.Value)
		}
		lat = append(lat, time.Since(sent))
	}
	slices.Sort(lat)
	median, p90 := lat[len(lat)/2], lat[len(lat)*9/10]
	t.Logf("produce → second hop, fetch wait %s: median %s, p90 %s, max %s", wait, median, p90, lat[len(lat)-1])
	if median > 50*time.Millisecond || p90 > 200*time.Millisecond {
		t.Errorf("held fetches were not answered when records arrived: median %s, p90 %s (want <= 50 ms, <= 200 ms)", median, p90)
	}
}

// TestConsumerOutlivesCanceledErrors: kafka-go's Reader returns errors wrapping
// context.Canceled while it is open (a generation's calls cut short). The consumer reports them
// and keeps reading; Records() closes only when the consumer is closed.
func TestConsumerOutlivesCanceledErrors(t *testing.T) {
	var mu sync.Mutex
	var heard []string
	calls := 0
	ctx, cancel := context.WithCancel(context.Background())
	c := &Consumer{
		fetch: func(ctx context.Context) (kafkago.Message, error) {
			calls++
			switch calls {
			case 1:
				return kafkago.Message{}, fmt.Errorf("joining the group: %w", context.Canceled)
			case 2:
				return kafkago.Message{Topic: "t", Partition: 1, Offset: 7, Key: []byte("k")}, nil
			default:
				<-ctx.Done()
				return kafkago.Message{}, ctx.Err()
			}
		},
		records: make(chan queue.Record, 1),
		onError: func(op string, err error) { mu.Lock(); heard = append(heard, op+": "+err.Error()); mu.Unlock() },
		stop:    cancel,
		done:    make(chan struct{}),
	}
	go c.pump(ctx)
	select {
	case rec, ok := <-c.Records():
		if !ok {
			t.Fatal("Records() closed after an error wrapping context.Canceled: the stage reading it would stop for good")
		}
		if rec.Offset != 7 || string(rec.Key) != "k" {
			t.Fatalf("record %+v", rec)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no record after the canceled error")
	}
	mu.Lock()
	if len(heard) != 1 || !strings.HasPrefix(heard[0], "fetch: fetch: joining the group") {
		t.Errorf("errors heard: %q, want the canceled one as a fetch failure", heard)
	}
	mu.Unlock()
	cancel()
	select {
	case _, ok := <-c.Records():
		if ok {
			t.Fatal("a record after Close")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Records() not closed after the consumer was stopped")
	}
}

// TestConsumerDrainsQueuedErrorsAtOnce: during a broker outage kafka-go's partition readers
// queue errors in the read-ahead queue ahead of the records that follow. Once the brokers are
// back the pump must get through a full queue of them at once (a fixed 200 ms per error made
// deliveries wait ~60 s on the cluster), yet still bound its pace when errors never end.
func TestConsumerDrainsQueuedErrorsAtOnce(t *testing.T) {
	const buffer = 1000
	synctest.Test(t, func(t *testing.T) {
		calls := 0
		ctx, cancel := context.WithCancel(context.Background())
		c := &Consumer{
			fetch: func(ctx context.Context) (kafkago.Message, error) {
				calls++
				if calls <= buffer {
					return kafkago.Message{}, errors.New("failed to dial: failed to open connection to 127.0.0.1:19093: connect: connection refused")
				}
				if calls == buffer+1 {
					return kafkago.Message{Topic: "t", Offset: 42}, nil
				}
				<-ctx.Done()
				return kafkago.Message{}, ctx.Err()
			},
			records: make(chan queue.Record, 1),
			onError: func(string, error) {},
			errPace: newErrPace(buffer),
			stop:    cancel,
			done:    make(chan struct{}),
		}
		start := time.Now()
		go c.pump(ctx)
		rec := <-c.Records()
		if waited := time.Since(start); rec.Offset != 42 || waited > 100*time.Millisecond {
			t.Errorf("record %+v after %d queued errors came %s later, want at once (<= 100 ms)", rec, buffer, waited)
		}
		cancel()
		<-c.done
	})

	synctest.Test(t, func(t *testing.T) {
		var calls atomic.Int64
		ctx, cancel := context.WithCancel(context.Background())
		c := &Consumer{
			fetch: func(context.Context) (kafkago.Message, error) {
				calls.Add(1)
				return kafkago.Message{}, errors.New("an error returned at once, forever")
			},
			records: make(chan queue.Record, 1),
			onError: func(string, error) {},
			errPace: newErrPace(buffer),
			stop:    cancel,
			done:    make(chan struct{}),
		}
		go c.pump(ctx)
		time.Sleep(10 * time.Second)
		cancel()
		<-c.done
		if n, most := calls.Load(), int64(buffer+64+10*errorsPerSecond+1); n > most {
			t.Errorf("%d fetches in 10 s of endless errors, want at most %d", n, most)
		}
	})
}
