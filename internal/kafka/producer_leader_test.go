package kafka

import (
	"context"
	"errors"
	"net"
	"slices"
	"sync"
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

// TestPublishLeavesAStalledLeader: the partition's leader stalls (it takes connections and
// bytes and answers nothing, as under SIGSTOP), and the controller moves the partition to
// another broker. No broker ever answers NOT_LEADER: the producer must learn of the move from a
// broker that answers — not from its ~6 s metadata cache, and not by asking the stalled one —
// and write to the new leader within the next Publish's deadline.
func TestPublishLeavesAStalledLeader(t *testing.T) {
	const topic = "stalled-leader"
	gates := make([]*gate, 3)
	var addrs []string
	n := 0
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(1, topic),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			l, err := net.Listen(network, "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			g := &gate{}
			g.cond = sync.NewCond(&g.mu)
			gates[n] = g
			n++
			addrs = append(addrs, l.Addr().String())
			return gatedListener{l, g}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	gateOf := func(node int32) *gate {
		for i, a := range addrs {
			if a == c.ListenAddrs()[node] {
				return gates[i]
			}
		}
		t.Fatalf("no gate for node %d (%v, %v)", node, addrs, c.ListenAddrs())
		return nil
	}
	t.Cleanup(func() {
		for _, g := range gates {
			g.set(false)
		}
		c.Close()
	})
	p := NewProducer(c.ListenAddrs(), topic, ProducerOptions{})
	defer p.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := p.Publish(ctx, msg("before")); err != nil {
		t.Fatalf("publish before the stall: %v", err)
	}
	cancel()
	old := c.LeaderFor(topic, 0)
	gateOf(old).set(true)
	ctx, cancel = context.WithTimeout(context.Background(), 500*time.Millisecond)
	err = p.Publish(ctx, msg("on-the-wire"))
	cancel()
	var pe *PublishError
	if !errors.As(err, &pe) || !pe.MaybeWritten() {
		t.Fatalf("publish to the stalled leader: %v, want a maybe-written PublishError", err)
	}
	next := (old + 1) % 3
	if err := c.MoveTopicPartition(topic, 0, next); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.Publish(ctx, msg("after")); err != nil {
		t.Fatalf("leader moved %d → %d while %d stays stalled: publish failed after %s: %v",
			old, next, old, time.Since(start).Round(time.Millisecond), err)
	}
	gateOf(old).set(false)
	got := readAll(t, c.ListenAddrs(), topic, 1, 3)
	got = slices.DeleteFunc(got, func(k string) bool { return k == "on-the-wire" })
	if want := []string{"before", "after"}; !slices.Equal(got, want) {
		t.Fatalf("on the log: %v, want %v (and maybe on-the-wire)", got, want)
	}
}
