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
// the given (unanswering) leaders; nil keeps the brokers left out last time. When that would
// leave none, every configured broker is used.
func (p *Producer) avoid(leaders map[int32]bool) {
	if leaders != nil {
		p.skip = make(map[string]bool, len(leaders))
		for id := range leaders {
			if addr, ok := p.brokerAddr[id]; ok {
				p.skip[addr] = true
			}
		}
	}
	var keep []string
	for _, b := range p.brokers {
		if !p.skip[b] {
			keep = append(keep, b)
		}
	}
	if len(keep) == 0 {
		keep = p.brokers
	}
	p.addr = kafkago.TCP(keep...)
	p.tr.CloseIdleConnections() // the old pools and their cached metadata
}
