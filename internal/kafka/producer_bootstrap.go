package kafka

import (
	"net"
	"strconv"

	kafkago "github.com/segmentio/kafka-go"
	metadataAPI "github.com/segmentio/kafka-go/protocol/metadata"
)

// The producer's bootstrap list: which brokers its transport asks for metadata.
//
// kafka-go's transport keeps one connection pool per bootstrap address list, reads the cluster's
// metadata from a random broker of the list, and serves every metadata request and routes every
// produce from that cache for ~6 s. A broker that is stalled (SIGSTOP, a hung disk, a cut link
// that drops nothing) still accepts connections and answers nothing: if the pool reads its
// metadata there, the pool holds an i/o timeout as its state and every publish fails at once
// until the next refresh; if it read earlier, it routes to the stalled leader until the cached
// leaders expire. After a request went unanswered, the producer therefore starts a fresh pool
// whose bootstrap list leaves out the brokers that did not answer: its metadata comes from a
// broker that does, and shows the new leaders as soon as the controller has elected them.

// rememberBrokers records the broker addresses of a metadata response by node ID.
func (p *Producer) rememberBrokers(m *metadataAPI.Response) {
	if p.brokerAddr == nil {
		p.brokerAddr = make(map[int32]string, len(m.Brokers))
	}
	for _, b := range m.Brokers {
		p.brokerAddr[b.NodeID] = net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port)))
	}
}

// avoid starts a fresh transport pool whose bootstrap list is the configured brokers without
// the given (unanswering) leaders. When that would leave none, every configured broker is used.
func (p *Producer) avoid(leaders map[int32]bool) {
	skip := make(map[string]bool, len(leaders))
	for id := range leaders {
		if addr, ok := p.brokerAddr[id]; ok {
			skip[addr] = true
		}
	}
	p.bootstrap(skip)
}

// avoidBootstrap starts a fresh transport pool after the brokers of the current bootstrap list
// gave no metadata (refused, reset, stalled): the list becomes the configured brokers left out
// of it, or all of them when none were. Keeping the list instead would pin a producer whose list
// was narrowed to the one broker that answered last time to that broker after it died: every
// publish would fail at the metadata read until the broker is back (the CI run of 2026-12-03,
// TestClusterLeaderKilled: the other two had been left out while they waited for the killed
// broker's acks, and 104 requests answered 503 after the new leaders were elected).
func (p *Producer) avoidBootstrap() {
	skip := make(map[string]bool, len(p.current))
	for _, b := range p.current {
		skip[b] = true
	}
	p.bootstrap(skip)
}

// bootstrap sets the transport's bootstrap list to the configured brokers not in skip (all of
// them when that leaves none) and drops the old pools and their cached metadata.
func (p *Producer) bootstrap(skip map[string]bool) {
	var keep []string
	for _, b := range p.brokers {
		if !skip[b] {
			keep = append(keep, b)
		}
	}
	if len(keep) == 0 {
		keep = p.brokers
	}
	p.current = keep
	p.addr = kafkago.TCP(keep...)
	p.tr.CloseIdleConnections()
}
