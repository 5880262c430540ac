package kafka

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/queue"
	kafkago "github.com/segmentio/kafka-go"
)

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
