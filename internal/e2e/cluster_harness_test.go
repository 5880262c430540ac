//go:build linux

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

// The cluster mode: with QGATE_E2E_KAFKA_BROKERS (host:port,...) and QGATE_E2E_KAFKA_DIR (the
// --dir of scripts/kafka.sh, where node I keeps its PID file node-I/pid) set, every test runs
// against that Apache Kafka cluster instead of starting `qgate broker`: each test gets its own
// profile and delivery topics (replication factor 3), and the cluster tests can kill and restart
// its nodes. `make test-kafka` sets both.

// kafkaCluster is the external cluster of the cluster mode.
type kafkaCluster struct {
	brokers []string
	dir     string
	nodes   int

	// With `scripts/kafka.sh start --proxy-node K` (make test-kafka): every node's CLIENT
	// listener as advertised, in node order (node K's is proxyAddr, where nothing listens until
	// a test starts a proxy there), K, and node K's CLIENT listener itself (the proxy's target).
	clientBrokers []string
	proxyNode     int
	proxyAddr     string
	proxyTarget   string
}

var (
	clusterOnce sync.Once
	cluster     *kafkaCluster
	clusterErr  error
)

// externalCluster returns the cluster of the cluster mode, nil without it. A half-set mode
// fails the test rather than silently falling back to `qgate broker`.
func externalCluster(t *testing.T) *kafkaCluster {
	t.Helper()
	clusterOnce.Do(func() {
		brokers, dir := os.Getenv("QGATE_E2E_KAFKA_BROKERS"), os.Getenv("QGATE_E2E_KAFKA_DIR")
		switch {
		case brokers == "" && dir == "":
			return
		case brokers == "" || dir == "":
			clusterErr = fmt.Errorf("set both QGATE_E2E_KAFKA_BROKERS and QGATE_E2E_KAFKA_DIR (got %q and %q)", brokers, dir)
			return
		}
		c := &kafkaCluster{brokers: strings.Split(brokers, ","), dir: dir}
		for i := 1; ; i++ {
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("node-%d", i), "server.properties")); err != nil {
				break
			}
			c.nodes = i
		}
		if c.nodes == 0 {
			clusterErr = fmt.Errorf("QGATE_E2E_KAFKA_DIR=%s holds no node-1/server.properties of scripts/kafka.sh", dir)
			return
		}
		if clusterErr = c.readClientListeners(); clusterErr != nil {
			return
		}
		cluster = c
	})
	if clusterErr != nil {
		fatal(t, clusterErr)
	}
	return cluster
}

// readClientListeners reads each node's CLIENT listener (bound and advertised) from its
// server.properties; a node whose two differ is the one clients reach through a proxy.
func (c *kafkaCluster) readClientListeners() error {
	for i := 1; i <= c.nodes; i++ {
		path := filepath.Join(c.dir, fmt.Sprintf("node-%d", i), "server.properties")
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var bound, advertised string
		for _, line := range strings.Split(string(b), "\n") {
			key, val, _ := strings.Cut(strings.TrimSpace(line), "=")
			for _, l := range strings.Split(val, ",") {
				if addr, ok := strings.CutPrefix(l, "CLIENT://"); ok {
					switch key {
					case "listeners":
						bound = addr
					case "advertised.listeners":
						advertised = addr
					}
				}
			}
		}
		switch {
		case bound == "" && advertised == "":
			if len(c.clientBrokers) > 0 {
				return fmt.Errorf("%s has no CLIENT listener but node 1 has", path)
			}
			continue
		case bound == "" || advertised == "":
			return fmt.Errorf("%s: CLIENT listener %q advertised as %q", path, bound, advertised)
		case bound != advertised:
			if c.proxyNode != 0 {
				return fmt.Errorf("%s: a second node advertises its CLIENT listener elsewhere", path)
			}
			c.proxyNode, c.proxyAddr, c.proxyTarget = i, advertised, bound
		}
		c.clientBrokers = append(c.clientBrokers, advertised)
	}
	if len(c.clientBrokers) > 0 && c.proxyNode == 0 {
		return fmt.Errorf("the CLIENT listeners in %s advertise no node at a proxy address", c.dir)
	}
	return nil
}

// brokerOnly names the tests that need the `qgate broker` process itself, and why.
var brokerOnly = map[string]string{
	"TestBrokerOutage": "it SIGSTOPs the `qgate broker` process; on the cluster, TestClusterBrokerPaused (SIGSTOP of a broker) takes its place",
}

// clusterTopics holds each cluster-mode test's topic names.
var clusterTopics sync.Map // *env → [2]string

// useCluster switches e to the external cluster when the cluster mode is on (and reports
// whether it did): e.brokerAddr becomes the cluster's bootstrap list and the test gets topics
// of its own. It waits until qgate's consumer groups have no members left from earlier tests,
// so that their rebalance does not count against this one.
func (e *env) useCluster() bool {
	e.t.Helper()
	c := externalCluster(e.t)
	if c == nil {
		return false
	}
	root := strings.SplitN(e.t.Name(), "/", 2)[0]
	if why, ok := brokerOnly[root]; ok {
		e.t.Skipf("not run on the Apache Kafka cluster: %s", why)
	}
	e.brokerAddr = strings.Join(c.brokers, ",")
	base := "e2e." + strings.ToLower(regexp.MustCompile(`[^A-Za-z0-9]+`).ReplaceAllString(e.t.Name(), "-")) + "." + randomHex(3)
	clusterTopics.Store(e, [2]string{base + ".profiles", base + ".deliveries"})
	e.t.Cleanup(func() { clusterTopics.Delete(e) })
	c.awaitGroupsEmpty(e.t, 30*time.Second, "qgate-router", "qgate-dispatcher")
	return true
}

// kafkaVars are the settings a node needs for the test's broker. On the in-process kfake broker
// the nodes keep the 20 ms fetch wait these tests were timed with (qgate's default is 1.5 s on
// every broker since issue #12: see config.ConsumerFetchWait).
func (e *env) kafkaVars() []string {
	v, ok := clusterTopics.Load(e)
	if !ok {
		return []string{"QGATE_KAFKA_FETCH_WAIT=20ms"}
	}
	topics := v.([2]string)
	return []string{
		"QGATE_PROFILE_TOPIC=" + topics[0],
		"QGATE_DELIVERY_TOPIC=" + topics[1],
		"QGATE_KAFKA_REPLICATION_FACTOR=3",
	}
}

// profileTopic is the test's profile topic in the cluster mode.
func (e *env) profileTopic() string {
	v, _ := clusterTopics.Load(e)
	return v.([2]string)[0]
}

// deliveryTopic is the test's delivery topic in the cluster mode.
func (e *env) deliveryTopic() string {
	v, _ := clusterTopics.Load(e)
	return v.([2]string)[1]
}

// requireCluster returns the cluster of the cluster mode; without it the test skips, saying
// how to run it.
func requireCluster(t *testing.T) *kafkaCluster {
	t.Helper()
	skipShort(t)
	c := externalCluster(t)
	if c == nil {
		t.Skip("needs a three-node Apache Kafka cluster: run `make test-kafka` (sets QGATE_E2E_KAFKA_BROKERS and QGATE_E2E_KAFKA_DIR)")
	}
	if c.nodes < 3 {
		fatalf(t, "the cluster in %s has %d nodes, want 3", c.dir, c.nodes)
	}
	return c
}

func (c *kafkaCluster) client() *kafkago.Client {
	// A fresh transport each time: no metadata cached from before a kill.
	return &kafkago.Client{Addr: kafkago.TCP(c.brokers...), Timeout: 5 * time.Second,
		Transport: &kafkago.Transport{DialTimeout: 2 * time.Second}}
}

// awaitGroupsEmpty waits until none of groups has members (a node killed by an earlier test
// stays a member until its session times out).
func (c *kafkaCluster) awaitGroupsEmpty(t *testing.T, within time.Duration, groups ...string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cl := c.client()
		res, err := cl.DescribeGroups(ctx, &kafkago.DescribeGroupsRequest{GroupIDs: groups})
		cancel()
		cl.Transport.(*kafkago.Transport).CloseIdleConnections()
		busy := ""
		if err != nil {
			busy = err.Error()
		} else {
			for _, g := range res.Groups {
				if g.Error == nil && len(g.Members) > 0 {
					busy += fmt.Sprintf("%s (%s, %d members) ", g.GroupID, g.GroupState, len(g.Members))
				}
			}
		}
		if busy == "" {
			return
		}
		if time.Now().After(deadline) {
			fatalf(t, "consumer groups still busy after %s: %s", within, busy)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// leaders returns the leader's node ID of each partition of topic, by partition. It gives up
// after a second (a paused broker takes the request and never answers).
func (c *kafkaCluster) leaders(topic string) (map[int]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cl := c.client()
	defer cl.Transport.(*kafkago.Transport).CloseIdleConnections()
	md, err := cl.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, err
	}
	for _, tp := range md.Topics {
		if tp.Name != topic {
			continue
		}
		if tp.Error != nil {
			return nil, tp.Error
		}
		out := map[int]int{}
		for _, p := range tp.Partitions {
			out[p.ID] = p.Leader.ID
			if p.Error != nil {
				out[p.ID] = -1
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("topic %s not in the metadata", topic)
}

// replicationFactor returns the replica count of topic's partition 0.
func (c *kafkaCluster) replicationFactor(topic string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl := c.client()
	defer cl.Transport.(*kafkago.Transport).CloseIdleConnections()
	md, err := cl.Metadata(ctx, &kafkago.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, err
	}
	for _, tp := range md.Topics {
		if tp.Name == topic && len(tp.Partitions) > 0 {
			return len(tp.Partitions[0].Replicas), nil
		}
	}
	return 0, fmt.Errorf("topic %s not in the metadata", topic)
}

func (c *kafkaCluster) pidFile(node int) string {
	return filepath.Join(c.dir, fmt.Sprintf("node-%d", node), "pid")
}

// pid is node's JVM as scripts/kafka.sh recorded it, checked to still run that node.
func (c *kafkaCluster) pid(node int) (int, error) {
	b, err := os.ReadFile(c.pidFile(node))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("%s: %w", c.pidFile(node), err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), filepath.Join(c.dir, fmt.Sprintf("node-%d", node), "server.properties")) {
		return 0, fmt.Errorf("node %d: pid %d (from %s) does not run it", node, pid, c.pidFile(node))
	}
	return pid, nil
}

// signal sends sig to node's JVM; after SIGKILL it waits until the process is gone and
// registers a cleanup that starts the node again, so the next test has the whole cluster.
func (c *kafkaCluster) signal(t *testing.T, node int, sig syscall.Signal) {
	t.Helper()
	pid, err := c.pid(node)
	if err != nil {
		fatal(t, err)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		fatalf(t, "kill -%d node %d (pid %d): %v", sig, node, pid, err)
	}
	switch sig {
	case syscall.SIGKILL:
		deadline := time.Now().Add(10 * time.Second)
		for syscall.Kill(pid, 0) == nil {
			if data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); strings.Contains(string(data), ") Z ") {
				break // a zombie (its parent, the shell of kafka.sh, is gone): dead
			}
			if time.Now().After(deadline) {
				fatalf(t, "node %d (pid %d) survived SIGKILL for 10s", node, pid)
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Cleanup(func() {
			if _, err := c.pid(node); err != nil {
				c.start(t, node)
			}
		})
	case syscall.SIGSTOP:
		t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGCONT) })
	}
}

// start runs `scripts/kafka.sh start-node`, which starts node again and waits until the
// cluster's metadata lists every broker.
func (c *kafkaCluster) start(t *testing.T, node int) {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		fatal(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "kafka.sh"), "start-node", strconv.Itoa(node), "--dir", c.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		fatalf(t, "scripts/kafka.sh start-node %d: %v\n%s", node, err, out)
	}
}

// stop runs `scripts/kafka.sh stop-node` (SIGTERM: a controlled shutdown that hands the node's
// leaderships over first; SIGKILL after 60 s) and returns once the process is gone. A cleanup
// starts the node again if the test ends before it does.
func (c *kafkaCluster) stop(t *testing.T, node int) {
	t.Helper()
	root, err := moduleRoot()
	if err != nil {
		fatal(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	t.Cleanup(func() {
		if _, err := c.pid(node); err != nil {
			c.start(t, node)
		}
	})
	cmd := exec.CommandContext(ctx, filepath.Join(root, "scripts", "kafka.sh"), "stop-node", strconv.Itoa(node), "--dir", c.dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		fatalf(t, "scripts/kafka.sh stop-node %d: %v\n%s", node, err, out)
	}
}

// awaitFullISR polls the metadata until every partition of topics has all its replicas in
// sync (and a leader), and returns when that was first seen.
func (c *kafkaCluster) awaitFullISR(t *testing.T, within time.Duration, topics ...string) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	var short []string
	for {
		short = short[:0]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		cl := c.client()
		md, err := cl.Metadata(ctx, &kafkago.MetadataRequest{Topics: topics})
		cancel()
		cl.Transport.(*kafkago.Transport).CloseIdleConnections()
		if err != nil {
			short = append(short, err.Error())
		} else {
			seen := 0
			for _, tp := range md.Topics {
				if !slices.Contains(topics, tp.Name) {
					continue
				}
				seen++
				if tp.Error != nil {
					short = append(short, fmt.Sprintf("%s: %v", tp.Name, tp.Error))
				}
				for _, p := range tp.Partitions {
					if p.Error != nil || len(p.Isr) < len(p.Replicas) || p.Leader.ID < 0 {
						short = append(short, fmt.Sprintf("%s/%d (ISR %d of %d, leader %d)", tp.Name, p.ID, len(p.Isr), len(p.Replicas), p.Leader.ID))
					}
				}
			}
			if seen < len(topics) {
				short = append(short, fmt.Sprintf("%d of %d topics in the metadata", seen, len(topics)))
			}
		}
		if len(short) == 0 {
			return time.Now()
		}
		if time.Now().After(deadline) {
			fatalf(t, "in-sync replicas not full %s later: %s", within, strings.Join(short[:min(6, len(short))], ", "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// logGroups logs, for each group and the topic it reads, its state, each member's partitions,
// and per partition the committed offset against the log's end: when delivery stalls, whether
// the group has a member that owns a partition and reads nothing.
func (c *kafkaCluster) logGroups(t *testing.T, groupTopic map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl := c.client()
	defer cl.Transport.(*kafkago.Transport).CloseIdleConnections()
	for group, topic := range groupTopic {
		var b strings.Builder
		fmt.Fprintf(&b, "group %s on %s: ", group, topic)
		if res, err := cl.DescribeGroups(ctx, &kafkago.DescribeGroupsRequest{GroupIDs: []string{group}}); err != nil {
			fmt.Fprintf(&b, "describe: %v; ", err)
		} else {
			for _, g := range res.Groups {
				fmt.Fprintf(&b, "state %s (%v), %d members", g.GroupState, g.Error, len(g.Members))
				for _, m := range g.Members {
					for _, mt := range m.MemberAssignments.Topics {
						if mt.Topic == topic {
							fmt.Fprintf(&b, " [%s…: %v]", m.MemberID[:min(20, len(m.MemberID))], mt.Partitions)
						}
					}
				}
				b.WriteString("; ")
			}
		}
		lead, err := c.leaders(topic)
		if err != nil {
			fmt.Fprintf(&b, "leaders: %v", err)
			t.Log(b.String())
			continue
		}
		parts := make([]int, 0, len(lead))
		lreq := &kafkago.ListOffsetsRequest{Topics: map[string][]kafkago.OffsetRequest{}}
		for p := range lead {
			parts = append(parts, p)
			lreq.Topics[topic] = append(lreq.Topics[topic], kafkago.LastOffsetOf(p))
		}
		slices.Sort(parts)
		ends := map[int]int64{}
		if res, err := cl.ListOffsets(ctx, lreq); err == nil {
			for _, po := range res.Topics[topic] {
				ends[po.Partition] = po.LastOffset
			}
		}
		committed := map[int]int64{}
		if res, err := cl.OffsetFetch(ctx, &kafkago.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}}); err != nil {
			fmt.Fprintf(&b, "offset fetch: %v; ", err)
		} else {
			for _, po := range res.Topics[topic] {
				committed[po.Partition] = po.CommittedOffset
			}
		}
		for _, p := range parts {
			fmt.Fprintf(&b, "p%d (leader %d) committed %d of %d; ", p, lead[p], committed[p], ends[p])
		}
		t.Log(b.String())
	}
}
