package kafka

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/qgate/qgate/internal/queue"
)

// gate freezes a broker the way SIGSTOP does: while frozen, the kernel (here: a pump per
// connection) still takes the client's bytes, but the broker neither reads them nor answers.
type gate struct {
	mu      sync.Mutex
	cond    *sync.Cond
	frozen  bool
	arrived int // bytes that arrived while frozen
	// ln and conns are the broker's listener and the connections it accepted: kill closes them
	// all, as SIGKILL does (a dial is then refused).
	ln    net.Listener
	conns []net.Conn
}

type gatedListener struct {
	net.Listener
	g *gate
}

func (l gatedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	gc := &gatedConn{Conn: c, g: l.g}
	l.g.mu.Lock()
	l.g.conns = append(l.g.conns, c)
	l.g.mu.Unlock()
	go gc.pump()
	return gc, nil
}

type gatedConn struct {
	net.Conn
	g   *gate
	buf bytes.Buffer
	err error
}

func (c *gatedConn) pump() {
	tmp := make([]byte, 64<<10)
	for {
		n, err := c.Conn.Read(tmp)
		c.g.mu.Lock()
		c.buf.Write(tmp[:n])
		if c.g.frozen {
			c.g.arrived += n
		}
		if err != nil {
			c.err = err
		}
		c.g.cond.Broadcast()
		c.g.mu.Unlock()
		if err != nil {
			return
		}
	}
}

func (c *gatedConn) Read(p []byte) (int, error) {
	c.g.mu.Lock()
	defer c.g.mu.Unlock()
	for c.g.frozen || (c.buf.Len() == 0 && c.err == nil) {
		c.g.cond.Wait()
	}
	if c.buf.Len() > 0 {
		return c.buf.Read(p)
	}
	return 0, c.err
}

func (c *gatedConn) Write(p []byte) (int, error) {
	c.g.mu.Lock()
	for c.g.frozen {
		c.g.cond.Wait()
	}
	c.g.mu.Unlock()
	return c.Conn.Write(p)
}

func (g *gate) set(frozen bool) {
	g.mu.Lock()
	g.frozen = frozen
	g.cond.Broadcast()
	g.mu.Unlock()
}

// kill closes the broker's listener and every connection it accepted: a dial to it is refused
// from now on, and what was on the wire is lost with the connection.
func (g *gate) kill() {
	g.mu.Lock()
	conns := g.conns
	g.conns = nil
	g.mu.Unlock()
	g.ln.Close()
	for _, c := range conns {
		c.Close()
	}
}

func newGate(l net.Listener) *gate {
	g := &gate{ln: l}
	g.cond = sync.NewCond(&g.mu)
	return g
}

// startGatedCluster starts a kfake cluster of brokers, each behind its own gate; gateOf(node)
// is the gate of a node ID.
func startGatedCluster(t *testing.T, brokers int, topic string, partitions int) (c *kfake.Cluster, gateOf func(node int32) *gate) {
	t.Helper()
	gates := map[string]*gate{}
	var mu sync.Mutex
	c, err := kfake.NewCluster(kfake.NumBrokers(brokers), kfake.SeedTopics(int32(partitions), topic),
		kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			l, err := net.Listen(network, "127.0.0.1:0")
			if err != nil {
				return nil, err
			}
			g := newGate(l)
			mu.Lock()
			gates[l.Addr().String()] = g
			mu.Unlock()
			return gatedListener{l, g}, nil
		}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, g := range gates {
			g.set(false)
		}
		c.Close()
	})
	addrs := c.ListenAddrs()
	return c, func(node int32) *gate {
		mu.Lock()
		defer mu.Unlock()
		g := gates[addrs[node]]
		if g == nil {
			t.Fatalf("no gate for node %d (%v)", node, addrs)
		}
		return g
	}
}

func startGatedBroker(t *testing.T, topic string, partitions int) (*kfake.Cluster, *gate) {
	t.Helper()
	c, gateOf := startGatedCluster(t, 1, topic, partitions)
	return c, gateOf(0)
}

func msg(key string) []queue.Message {
	return []queue.Message{{Key: []byte(key), Value: []byte("v-" + key)}}
}

// readAll reads every record of topic's partitions until n are read or the timeout passes.
func readAll(t *testing.T, brokers []string, topic string, partitions, want int) []string {
	t.Helper()
	var got []string
	for part := range partitions {
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: part, MaxWait: 50 * time.Millisecond})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			m, err := r.ReadMessage(ctx)
			cancel()
			if err != nil {
				break
			}
			got = append(got, string(m.Key))
			if len(got) == want {
				break
			}
		}
		r.Close()
	}
	return got
}

// TestPublishDuringStallIsTruthful: with the broker frozen, a Publish on the wire when its
// deadline passes is answered "maybe written" (it may land once the broker resumes), and a Publish
// queued behind it is answered "not written" and never lands.
func TestPublishDuringStallIsTruthful(t *testing.T) {
	const topic = "stall"
	c, g := startGatedBroker(t, topic, 1)
	p := NewProducer(c.ListenAddrs(), topic, ProducerOptions{})
	defer p.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := p.Publish(ctx, msg("before")); err != nil {
		t.Fatalf("broker up: %v", err)
	}
	cancel()

	g.set(true)
	errA := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 400*time.Millisecond)
		defer cancel()
		errA <- p.Publish(ctx, msg("on-the-wire"))
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		g.mu.Lock()
		n := g.arrived
		g.mu.Unlock()
		if n > 0 {
			break // A's produce request reached the frozen broker
		}
		if time.Now().After(deadline) {
			t.Fatal("the produce request never reached the broker")
		}
	}
	ctxB, cancelB := context.WithTimeout(context.Background(), 700*time.Millisecond)
	start := time.Now()
	errB := p.Publish(ctxB, msg("queued"))
	cancelB()
	if d := time.Since(start); d > time.Second {
		t.Errorf("queued Publish took %s with a 700ms deadline", d)
	}
	var pe *PublishError
	if err := <-errA; !errors.As(err, &pe) || !pe.MaybeWritten() || !pe.NotWritten(0) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("on-the-wire Publish: %v (want a maybe-written PublishError)", err)
	}
	if !errors.As(errB, &pe) || pe.MaybeWritten() || !pe.NotWritten(0) {
		t.Fatalf("queued Publish: %v (want a not-written PublishError)", errB)
	}

	g.set(false)
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		err := p.Publish(ctx, msg("after"))
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("broker resumed, still failing: %v", err)
		}
	}
	// "on-the-wire" may or may not be on the log (the broker may process the request of a
	// connection the client has given up on); "queued" must not be.
	got := readAll(t, c.ListenAddrs(), topic, 1, 4)
	slices.Sort(got)
	got = slices.DeleteFunc(got, func(k string) bool { return k == "on-the-wire" })
	if want := []string{"after", "before"}; !slices.Equal(got, want) {
		t.Fatalf("on the log: %v, want %v and maybe on-the-wire (a not-written profile must never land)", got, want)
	}
}

// TestPublishKeepsOrderPerKeyUnderConcurrency: concurrent callers' messages share produce
// requests; each key's messages are on the log in the order their Publish calls returned.
func TestPublishKeepsOrderPerKeyUnderConcurrency(t *testing.T) {
	const topic, parts, keys, perKey = "order", 4, 16, 50
	c, _ := startGatedBroker(t, topic, parts)
	p := NewProducer(c.ListenAddrs(), topic, ProducerOptions{})
	defer p.Close()
	var wg sync.WaitGroup
	for k := range keys {
		wg.Go(func() {
			for i := range perKey {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err := p.Publish(ctx, []queue.Message{{Key: fmt.Appendf(nil, "k%d", k), Value: fmt.Appendf(nil, "%d", i)}})
				cancel()
				if err != nil {
					t.Errorf("publish k%d/%d: %v", k, i, err)
					return
				}
			}
		})
	}
	wg.Wait()
	seen := map[string]int{}
	for part := range parts {
		r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: c.ListenAddrs(), Topic: topic, Partition: part, MaxWait: 50 * time.Millisecond})
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			m, err := r.ReadMessage(ctx)
			cancel()
			if err != nil {
				break
			}
			k := string(m.Key)
			if want := fmt.Sprint(seen[k]); string(m.Value) != want {
				t.Fatalf("key %s: got %s, want %s next", k, m.Value, want)
			}
			if hashPartition(m.Key, parts) != part {
				t.Fatalf("key %s on partition %d", k, part)
			}
			seen[k]++
		}
		r.Close()
	}
	for k := range keys {
		if n := seen[fmt.Sprintf("k%d", k)]; n != perKey {
			t.Errorf("k%d: %d messages on the log, want %d", k, n, perKey)
		}
	}
}

// TestHashPartitionMatchesKafkaGo: keys land where kafka-go's Hash balancer (the previous
// producer's) put them, so switching producers does not move a key mid-stream.
func TestHashPartitionMatchesKafkaGo(t *testing.T) {
	parts := []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	h := &kafkago.Hash{}
	for i := range 5000 {
		key := fmt.Appendf(nil, "ecid:%d|email:user%d@example.com", i*7919, i)
		for _, n := range []int{1, 3, 12} {
			if got, want := hashPartition(key, n), h.Balance(kafkago.Message{Key: key}, parts[:n]...); got != want {
				t.Fatalf("key %q, %d partitions: %d, kafka-go %d", key, n, got, want)
			}
		}
	}
}

// TestPublishLargerThanABrokerBatch: one Publish of several MB to one partition is split into
// record batches under the broker's message.max.bytes (1 MB by default) and sent in order.
func TestPublishLargerThanABrokerBatch(t *testing.T) {
	const topic, n = "large", 3000
	c, _ := startGatedBroker(t, topic, 2)
	p := NewProducer(c.ListenAddrs(), topic, ProducerOptions{})
	defer p.Close()
	msgs := make([]queue.Message, n)
	val := bytes.Repeat([]byte("x"), 1000)
	for i := range msgs {
		msgs[i] = queue.Message{Key: []byte("same-key"), Value: fmt.Appendf(slices.Clip(val), "%d", i)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.Publish(ctx, msgs); err != nil {
		t.Fatalf("publish %d × 1 KB: %v", n, err)
	}
	part := hashPartition([]byte("same-key"), 2)
	r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: c.ListenAddrs(), Topic: topic, Partition: part, MaxWait: 50 * time.Millisecond})
	defer r.Close()
	for i := range n {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("read %d: %v", i, err)
		}
		if want := fmt.Sprint(i); !bytes.HasSuffix(m.Value, []byte(want)) || len(m.Value) != 1000+len(want) {
			t.Fatalf("record %d: ...%s", i, m.Value[990:])
		}
	}
}
