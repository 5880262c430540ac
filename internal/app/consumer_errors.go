package app

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// consumerErrors makes the Kafka consumers' failures visible (kafka.ConsumerOptions.OnError):
// every failure is counted in qgate_kafka_consumer_errors_total{group, op}, and logged at warn
// — the first of a group and op at once, then at most one per logEvery, saying how many were
// not logged since. A broker that is down makes kafka-go fail many times a second; the counter
// shows the rate, the log the cause. The errors carry brokers, topics, partitions and offsets,
// never a record's content.
type consumerErrors struct {
	total    *prometheus.CounterVec
	log      *zap.Logger
	logEvery time.Duration
	now      func() time.Time

	mu     sync.Mutex
	logged map[[2]string]time.Time // (group, op) → when last logged
	held   map[[2]string]int       // (group, op) → failures not logged since
}

const consumerErrorLogEvery = 10 * time.Second

func newConsumerErrors(reg prometheus.Registerer, log *zap.Logger) *consumerErrors {
	c := &consumerErrors{
		total: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "qgate_kafka_consumer_errors_total",
			Help: "Failures of the Kafka consumers: op fetch (joining the group, reading; retried by itself) or commit (offsets), by consumer group."},
			[]string{"group", "op"}),
		log: log, logEvery: consumerErrorLogEvery, now: time.Now,
		logged: map[[2]string]time.Time{}, held: map[[2]string]int{},
	}
	reg.MustRegister(c.total)
	return c
}

// reporter is the OnError of group's consumer.
func (c *consumerErrors) reporter(group string) func(op string, err error) {
	for _, op := range []string{"fetch", "commit"} {
		c.total.WithLabelValues(group, op) // the series exist from the start, at 0
	}
	return func(op string, err error) {
		c.total.WithLabelValues(group, op).Inc()
		k := [2]string{group, op}
		now := c.now()
		c.mu.Lock()
		last, seen := c.logged[k]
		if seen && now.Sub(last) < c.logEvery {
			c.held[k]++
			c.mu.Unlock()
			return
		}
		held := c.held[k]
		c.logged[k], c.held[k] = now, 0
		c.mu.Unlock()
		c.log.Warn("kafka consumer "+op+" failed; retrying", zap.String("group", group), zap.String("cause", OneLine(err)),
			zap.Int("notLoggedSinceLast", held))
	}
}
