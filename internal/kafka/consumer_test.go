package kafka

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/queue"
)

// TestHeldFetchIsAnsweredWhenARecordArrives is why qgate's consumers can use a long fetch wait
// on the embedded broker (config.ConsumerFetchWait, issue #12): with MaxWait 1.5 s kfake holds
// each fetch of an idle partition for 0.5 s, and a record produced meanwhile must end the hold
// at once — through two hops (router and dispatcher are two consumer groups, the first
// publishing to the second's topic), as in qgate. Were holds answered only at their timeout,
// a record produced 50–250 ms into one would wait 250–450 ms per hop.
func TestHeldFetchIsAnsweredWhenARecordArrives(t *testing.T) {
	e, err := StartEmbedded(0)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := EnsureTopics(ctx, e.Addrs(), TopicSpec{Name: "in", Partitions: 4, ReplicationFactor: 1}, TopicSpec{Name: "out", Partitions: 4, ReplicationFactor: 1}); err != nil {
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
