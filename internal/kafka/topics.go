package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// EnsureTopics creates the topics that do not exist yet; existing ones are left as they are.
// It returns the names of the topics it created.
func EnsureTopics(ctx context.Context, brokers []string, topics ...TopicSpec) ([]string, error) {
	client := &kafkago.Client{Addr: kafkago.TCP(brokers...), Timeout: 10 * time.Second}
	req := &kafkago.CreateTopicsRequest{}
	for _, t := range topics {
		req.Topics = append(req.Topics, kafkago.TopicConfig{
			Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: t.ReplicationFactor,
		})
	}
	resp, err := client.CreateTopics(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("create topics: %w", err)
	}
	var created []string
	var errs []error
	for _, t := range topics {
		switch terr := resp.Errors[t.Name]; {
		case terr == nil:
			created = append(created, t.Name)
		case !errors.Is(terr, kafkago.TopicAlreadyExists):
			errs = append(errs, fmt.Errorf("create topic %s: %w", t.Name, terr))
		}
	}
	return created, errors.Join(errs...)
}

// AwaitLeaders returns once every broker of the cluster answers a metadata request for topics
// with each of their partitions led, or with ctx's end and what was still missing.
//
// A topic exists once the controller has committed it, but each broker learns of it when it
// applies the metadata log a moment later: until then a broker that should lead a partition
// refuses produce requests for it, and a follower that does not know its replica does not fetch,
// so an acks=all produce waits. A process that starts with topics it has just created waits here
// before it takes traffic, instead of answering its first requests 503.
func AwaitLeaders(ctx context.Context, brokers []string, topics ...string) error {
	if len(topics) == 0 {
		return nil
	}
	delay := 20 * time.Millisecond
	for {
		err := leadersEverywhere(ctx, brokers, topics)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topics %v not led on every broker: %w", topics, err)
		case <-time.After(delay):
			delay = min(2*delay, 250*time.Millisecond)
		}
	}
}

// leadersEverywhere asks each broker of the cluster (as listed by one of brokers) for the
// metadata of topics and names the first broker or partition that is not ready.
func leadersEverywhere(ctx context.Context, brokers []string, topics []string) error {
	md, err := metadata(ctx, kafkago.TCP(brokers...), topics)
	if err != nil {
		return err
	}
	if len(md.Brokers) == 0 {
		return errors.New("the cluster lists no brokers")
	}
	for _, b := range md.Brokers {
		addr := net.JoinHostPort(b.Host, strconv.Itoa(b.Port))
		bmd, err := metadata(ctx, kafkago.TCP(addr), topics)
		if err != nil {
			return fmt.Errorf("broker %d (%s): %w", b.ID, addr, err)
		}
		if err := allLed(bmd, topics); err != nil {
			return fmt.Errorf("broker %d (%s): %w", b.ID, addr, err)
		}
	}
	return nil
}

func metadata(ctx context.Context, addr net.Addr, topics []string) (*kafkago.MetadataResponse, error) {
	// A fresh transport: no metadata cached between two polls.
	client := &kafkago.Client{Addr: addr, Timeout: 5 * time.Second, Transport: &kafkago.Transport{}}
	defer client.Transport.(*kafkago.Transport).CloseIdleConnections()
	return client.Metadata(ctx, &kafkago.MetadataRequest{Topics: topics})
}

// allLed checks that md knows each of topics and that each partition has a leader in its ISR.
func allLed(md *kafkago.MetadataResponse, topics []string) error {
	seen := map[string]bool{}
	for _, t := range md.Topics {
		seen[t.Name] = true
		if t.Error != nil {
			return fmt.Errorf("topic %s: %w", t.Name, t.Error)
		}
		if len(t.Partitions) == 0 {
			return fmt.Errorf("topic %s: no partitions yet", t.Name)
		}
		for _, p := range t.Partitions {
			if p.Error != nil {
				return fmt.Errorf("topic %s partition %d: %w", t.Name, p.ID, p.Error)
			}
			// kafka-go maps a leader the response does not list among the live brokers (-1:
			// none) to the zero Broker: no host.
			if p.Leader.Host == "" || !inISR(p.Leader.ID, p.Isr) {
				return fmt.Errorf("topic %s partition %d: no leader yet", t.Name, p.ID)
			}
		}
	}
	for _, name := range topics {
		if !seen[name] {
			return fmt.Errorf("topic %s: unknown to this broker", name)
		}
	}
	return nil
}

func inISR(id int, isr []kafkago.Broker) bool {
	for _, b := range isr {
		if b.ID == id {
			return true
		}
	}
	return false
}
