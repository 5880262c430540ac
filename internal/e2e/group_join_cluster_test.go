//go:build linux

package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/qgate/qgate/internal/kafka"
	"github.com/qgate/qgate/internal/queue"
)

// TestClusterMemberJoinsDuringRebalance: on the three-broker cluster, a second qgate consumer
// (kafka.Consumer, as the router and dispatcher use it) joins a group at a range of moments
// around the first one's own join — with the first's JoinGroup, inside its SyncGroup
// (CompletingRebalance), just after, and a second or more later — while records keep arriving
// on every partition. Whatever the moment, every partition must be consumed up to its end offset
// of 3 s after the join within the session timeout (10 s) plus 10 s. A member that holds an
// assignment but reads nothing (group stable, half the partitions stalled) fails it; the test
// prints how long each case took.
func TestClusterMemberJoinsDuringRebalance(t *testing.T) {
	c := requireCluster(t)
	const partitions = 6
	topic := "e2e.member-joins." + randomHex(4)
	ctx := context.Background()
	if _, err := kafka.EnsureTopics(ctx, c.brokers, kafka.TopicSpec{Name: topic, Partitions: partitions, ReplicationFactor: 3}); err != nil {
		fatal(t, err)
	}
	// As a node does after creating its topics: until every broker leads the new topic's
	// partitions, publishes to it fail (CI once saw partition 0 get nothing for the first case's
	// 3 s).
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := kafka.AwaitLeaders(actx, c.brokers, topic); err != nil {
		fatalf(t, "leaders of %s: %v", topic, err)
	}
	p := kafka.NewProducer(c.brokers, topic, kafka.ProducerOptions{})
	defer p.Close()
	stopProducing, producing := make(chan struct{}), make(chan struct{})
	go func() { // a steady stream: 96 keys (every partition gets records) every 200 ms
		defer close(producing)
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; n++ {
			msgs := make([]queue.Message, 96)
			for i := range msgs {
				msgs[i] = queue.Message{Key: fmt.Appendf(nil, "key-%d", i), Value: fmt.Appendf(nil, "%d", n)}
			}
			pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_ = p.Publish(pctx, msgs) // a failed publish only means fewer records to read
			cancel()
			select {
			case <-stopProducing:
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { close(stopProducing); <-producing }()

	endOffsets := func() ([]int64, error) {
		req := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
		for i := range partitions {
			req.Topics[topic] = append(req.Topics[topic], kafkago.LastOffsetOf(i))
		}
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		cl := c.client()
		defer cl.Transport.(*kafkago.Transport).CloseIdleConnections()
		res, err := cl.ListOffsets(lctx, req)
		if err != nil {
			return nil, err
		}
		ends := make([]int64, partitions)
		for _, po := range res.Topics[topic] {
			if po.Error != nil {
				return nil, fmt.Errorf("partition %d: %w", po.Partition, po.Error)
			}
			ends[po.Partition] = po.LastOffset
		}
		return ends, nil
	}

	// The stream is running once every partition has records: the cases start from there.
	for deadline := time.Now().Add(30 * time.Second); ; {
		ends, err := endOffsets()
		running := err == nil
		for _, end := range ends {
			running = running && end > 0
		}
		if running {
			break
		}
		if time.Now().After(deadline) {
			fatalf(t, "the stream did not reach every partition within 30 s (ends %v, %v)", ends, err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	delays := []time.Duration{0, 20 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond,
		150 * time.Millisecond, 250 * time.Millisecond, 400 * time.Millisecond, time.Second, 1500 * time.Millisecond}
	for i, delay := range delays {
		t.Run(fmt.Sprintf("second-after-%s", delay), func(t *testing.T) {
			group := fmt.Sprintf("e2e.member-joins.%s.%d", randomHex(4), i)
			var mu sync.Mutex
			next := make([]int64, partitions) // per partition: the offset after the highest consumed
			owner := make([]string, partitions)
			var wg sync.WaitGroup
			cctx, stopCommits := context.WithCancel(ctx) // a kafka-go commit waits forever once its reader is closed
			consume := func(name string, cons *kafka.Consumer) {
				defer wg.Done()
				n := 0
				for rec := range cons.Records() {
					mu.Lock()
					next[rec.Partition] = max(next[rec.Partition], rec.Offset+1)
					owner[rec.Partition] = name
					mu.Unlock()
					if n++; n%50 == 0 {
						_ = cons.Commit(cctx, rec) // a refused commit only means records are read again
					}
				}
			}
			// What the two members' kafka-go readers reported (group joins, partition reads,
			// commits): printed when the case fails, so a stall names its cause.
			var errMu sync.Mutex
			var errs []string
			opts := func(name string) kafka.ConsumerOptions {
				return kafka.ConsumerOptions{OnError: func(op string, err error) {
					errMu.Lock()
					defer errMu.Unlock()
					if len(errs) < 200 {
						errs = append(errs, fmt.Sprintf("%s %s %s: %v", time.Now().Format("15:04:05.000"), name, op, err))
					}
				}}
			}
			defer func() {
				if t.Failed() {
					errMu.Lock()
					defer errMu.Unlock()
					t.Logf("the members' reader errors (%d):\n%s", len(errs), strings.Join(errs, "\n"))
				}
			}()
			c1 := kafka.NewConsumer(c.brokers, group, topic, opts("first"))
			wg.Add(2)
			go consume("first", c1)
			time.Sleep(delay) // the moment of the second join: the timeline under test
			joined := time.Now()
			c2 := kafka.NewConsumer(c.brokers, group, topic, opts("second"))
			go consume("second", c2)
			defer func() { stopCommits(); c1.Close(); c2.Close(); wg.Wait() }()

			// The target: the log's end 3 s after the join, by when the group has rebalanced; what
			// is produced later is read by whoever owns the partition then.
			time.Sleep(3 * time.Second) // timeline: the records waited for arrive after the rebalance
			target, err := endOffsets()
			if err != nil {
				fatalf(t, "end offsets: %v", err)
			}
			for p, end := range target {
				if end == 0 {
					fatalf(t, "partition %d got no records to consume (the stream is not running)", p)
				}
			}
			const bound = 10*time.Second + 10*time.Second // session timeout + margin
			for {
				mu.Lock()
				var behind []string
				for p := range partitions {
					if next[p] < target[p] {
						who := owner[p]
						if who == "" {
							who = "nobody"
						}
						behind = append(behind, fmt.Sprintf("%d (at %d of %d, last read by %s)", p, next[p], target[p], who))
					}
				}
				mu.Unlock()
				if len(behind) == 0 {
					t.Logf("second member joined %s after the first: every partition consumed to its end of 3 s after the join %s after the join", delay, time.Since(joined).Round(time.Millisecond))
					return
				}
				if time.Since(joined) > bound {
					fatalf(t, "second member joined %s after the first: %s after the join, partitions %s are still behind", delay, time.Since(joined).Round(time.Millisecond), strings.Join(behind, ", "))
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
