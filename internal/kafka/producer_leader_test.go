package kafka

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// TestPublishFollowsAMovedLeader: a partition's leader moves to another broker after the
// producer cached the metadata (as in a failover). The old leader answers NOT_LEADER_OR_FOLLOWER;
// the producer must read the metadata afresh and write to the new leader within the Publish's
// deadline, well before kafka-go's ~6 s metadata refresh.
func TestPublishFollowsAMovedLeader(t *testing.T) {
	const topic = "moved"
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(1, topic))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	p := NewProducer(c.ListenAddrs(), topic, ProducerOptions{})
	defer p.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := p.Publish(ctx, msg("before")); err != nil {
		t.Fatalf("publish before the move: %v", err)
	}
	cancel()
	for i := range 3 { // three moves in a row: each must be followed at once
		old := c.LeaderFor(topic, 0)
		next := (old + 1) % 3
		if err := c.MoveTopicPartition(topic, 0, next); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		start := time.Now()
		err := p.Publish(ctx, msg("after-"+string(rune('a'+i))))
		cancel()
		if err != nil {
			t.Fatalf("move %d (leader %d → %d): publish failed after %s: %v", i+1, old, next, time.Since(start).Round(time.Millisecond), err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("move %d: publish took %s", i+1, d.Round(time.Millisecond))
		}
	}
	got := readAll(t, c.ListenAddrs(), topic, 1, 4)
	if want := []string{"before", "after-a", "after-b", "after-c"}; !slices.Equal(got, want) {
		t.Fatalf("on the log: %v, want %v", got, want)
	}
}
