#!/usr/bin/env bash
# A local Apache Kafka cluster for tests, benchmarks and `make run-kafka`: N KRaft nodes on
# loopback, each broker+controller in its own JVM, static controller.quorum.voters, replication
# factor 3 and min.insync.replicas=2. The broker jars come from Maven Central (scripts/kafka/pom.xml)
# and are cached under .cache/kafka/<version>/jars.
#
#   scripts/kafka.sh fetch  [--version V]
#   scripts/kafka.sh start  [--nodes 3] [--version V] [--dir D] [--port 19092] [--controller-port 19192]
#                           [--proxy-node K]
#   scripts/kafka.sh status [--dir D]
#   scripts/kafka.sh stop   [--dir D]
#   scripts/kafka.sh start-node I [--dir D]      # start node I again (after a kill); wait until the
#                                                # metadata lists every node that runs
#   scripts/kafka.sh stop-node I [--kill] [--dir D]
#   scripts/kafka.sh env    [--dir D]           # KAFKA_BROKERS=... and the PID-file paths
#
# Node I listens on 127.0.0.1:(port+I-1) for clients and (controller-port+I-1) for the quorum;
# its PID file is D/node-I/pid, its log D/node-I/node.log. `stop` ends only the PIDs recorded
# there (and only if the process still runs that node's server.properties). `start` on a dir
# that holds a formatted cluster restarts its nodes; --fresh wipes it first.
# --proxy-node K gives every node a second client listener, CLIENT, on 127.0.0.1:(port+N+I-1)
# (N nodes), each advertised at its own address except node K's, advertised at
# 127.0.0.1:(port+2N) where nothing listens: a client that bootstraps from the CLIENT addresses
# reaches node K only through a TCP proxy on that port (the e2e link-cut test runs one), while
# the brokers replicate over PLAINTEXT as before.
# Environment: KAFKA_VERSION, KAFKA_DIR, KAFKA_HEAP (-Xmx, default 384m), KAFKA_PORT,
# KAFKA_CONTROLLER_PORT, KAFKA_NODES, KAFKA_PROXY_NODE.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${KAFKA_VERSION:-4.4.0}"
DIR="${KAFKA_DIR:-$ROOT/.cache/kafka/cluster}"
NODES="${KAFKA_NODES:-3}"
PORT="${KAFKA_PORT:-19092}"
CPORT="${KAFKA_CONTROLLER_PORT:-19192}"
HEAP="${KAFKA_HEAP:-384m}"
PROXY_NODE="${KAFKA_PROXY_NODE:-}"
FRESH=0
KILL=0
NODE=""

die() { echo "kafka.sh: $*" >&2; exit 1; }
log() { echo "kafka.sh: $*" >&2; }

cmd="${1:-}"
[ -n "$cmd" ] || die "usage: kafka.sh fetch|start|stop|status|start-node I|stop-node I|env [options]"
shift
case "$cmd" in start-node|stop-node)
	NODE="${1:-}"; shift || true
	[[ "$NODE" =~ ^[1-9][0-9]*$ ]] || die "$cmd: want a node number, got '${NODE}'" ;;
esac
while [ $# -gt 0 ]; do
	case "$1" in
	--nodes) NODES="$2"; shift 2 ;;
	--version) VERSION="$2"; shift 2 ;;
	--dir) DIR="$2"; shift 2 ;;
	--port) PORT="$2"; shift 2 ;;
	--controller-port) CPORT="$2"; shift 2 ;;
	--heap) HEAP="$2"; shift 2 ;;
	--proxy-node) PROXY_NODE="$2"; shift 2 ;;
	--fresh) FRESH=1; shift ;;
	--kill) KILL=1; shift ;;
	*) die "unknown option $1" ;;
	esac
done
[[ "$NODES" =~ ^[1-9]$ ]] || die "--nodes $NODES: want 1 to 9"
[[ "$VERSION" =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "--version $VERSION: want X.Y.Z"
[[ "$PORT" =~ ^[0-9]+$ && "$CPORT" =~ ^[0-9]+$ ]] || die "--port/--controller-port: want numbers"
[[ -z "$PROXY_NODE" || ( "$PROXY_NODE" =~ ^[1-9]$ && "$PROXY_NODE" -le "$NODES" ) ]] || die "--proxy-node $PROXY_NODE: want a node number of 1 to $NODES"
case "$DIR" in /*) ;; *) DIR="$PWD/$DIR" ;; esac

# A started cluster's settings win over the defaults, so stop/status/start-node need only --dir.
if [ -f "$DIR/cluster.env" ] && [ "$cmd" != fetch ] && { [ "$cmd" != start ] || [ "$FRESH" = 0 ]; }; then
	# shellcheck disable=SC1091
	. "$DIR/cluster.env"
fi
JARS="$ROOT/.cache/kafka/$VERSION/jars"

# ---- fetch ----

binding_re='^(slf4j-reload4j|slf4j-log4j12|slf4j-simple|slf4j-jdk14|slf4j-nop|logback-classic|log4j-slf4j-impl|log4j-slf4j2-impl)-'

# need_tools: java (and mvn to fetch); as root on Debian, install the missing packages.
need_tools() {
	local missing=()
	command -v java >/dev/null || missing+=(openjdk-17-jre-headless)
	if [ "${1:-}" = mvn ] && ! command -v mvn >/dev/null; then missing+=(maven); fi
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
		log "installing ${missing[*]} (Debian packages)"
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null \
			|| die "apt-get install ${missing[*]} failed"
	else
		die "missing ${missing[*]}: install them (Debian: apt-get install -y ${missing[*]})"
	fi
}

fetch() {
	if [ -f "$JARS/.complete" ]; then return 0; fi
	need_tools mvn
	log "fetching Apache Kafka $VERSION from Maven Central into $JARS"
	local tmp="$JARS.tmp"
	rm -rf "$tmp" && mkdir -p "$tmp"
	local mvn=(mvn -q -B -Dstyle.color=never -f "$ROOT/scripts/kafka/pom.xml" -Dkafka.version="$VERSION"
		dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp")
	# Maven's output goes to a log, shown when it fails.
	run_mvn() { "${mvn[@]}" "$@" >"$JARS.mvn.log" 2>&1 || { tail -40 "$JARS.mvn.log" >&2; return 1; }; }
	run_mvn || die "mvn dependency:copy-dependencies failed for kafka_2.13 $VERSION"
	# Exactly one SLF4J binding, for the logging backend the broker brings: log4j2 (Kafka 4) or,
	# without it, reload4j (Kafka 3), at the slf4j-api version Kafka pulls.
	local slf4j log4j
	slf4j="$(find "$tmp" -name 'slf4j-api-*.jar' -printf '%f\n' | sed 's/^slf4j-api-\(.*\)\.jar$/\1/')"
	log4j="$(find "$tmp" -name 'log4j-core-*.jar' -printf '%f\n' | sed 's/^log4j-core-\(.*\)\.jar$/\1/')"
	[ -n "$slf4j" ] || die "kafka_2.13 $VERSION pulled no slf4j-api"
	if [ -n "$log4j" ]; then
		case "$slf4j" in 1.*) b=log4j-slf4j-impl ;; *) b=log4j-slf4j2-impl ;; esac
		run_mvn -Pbinding -Dbinding.groupId=org.apache.logging.log4j -Dbinding.artifactId="$b" -Dbinding.version="$log4j" \
			|| die "fetching $b $log4j failed"
	else
		run_mvn -Pbinding -Dbinding.groupId=org.slf4j -Dbinding.artifactId=slf4j-reload4j -Dbinding.version="$slf4j" \
			|| die "fetching slf4j-reload4j $slf4j failed"
	fi
	local n
	n="$(find "$tmp" -name '*.jar' -printf '%f\n' | grep -cE "$binding_re" || true)"
	[ "$n" = 1 ] || die "want exactly one SLF4J binding, found $n: $(find "$tmp" -name '*.jar' -printf '%f\n' | grep -E "$binding_re" | tr '\n' ' ')"
	[ "$(find "$tmp" -name 'slf4j-api-*.jar' | wc -l)" = 1 ] || die "more than one slf4j-api jar"
	# Every org.apache.kafka jar at $VERSION (they are the kafka-* and kafka_2.13 jars).
	local odd
	odd="$(find "$tmp" \( -name 'kafka-*.jar' -o -name 'kafka_*.jar' \) ! -name "*-$VERSION.jar" -printf '%f ')"
	[ -z "$odd" ] || die "org.apache.kafka jars not at $VERSION: $odd"
	[ -f "$tmp/kafka_2.13-$VERSION.jar" ] || die "kafka_2.13-$VERSION.jar missing"
	touch "$tmp/.complete"
	rm -rf "$JARS" && mv "$tmp" "$JARS"
	log "fetched $(find "$JARS" -name '*.jar' | wc -l) jars; SLF4J binding: $(find "$JARS" -name '*.jar' -printf '%f\n' | grep -E "$binding_re")"
}

# ---- nodes ----

node_dir() { echo "$DIR/node-$1"; }
pid_of() { cat "$(node_dir "$1")/pid" 2>/dev/null || true; }

# running I: node I's recorded PID is alive and runs that node's server.properties.
running() {
	local pid; pid="$(pid_of "$1")"
	[ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$(node_dir "$1")/server.properties"
}

bootstrap() {
	local i s=""
	for i in $(seq 1 "$NODES"); do s="$s${s:+,}127.0.0.1:$((PORT + i - 1))"; done
	echo "$s"
}

voters() {
	local i s=""
	for i in $(seq 1 "$NODES"); do s="$s${s:+,}$i@127.0.0.1:$((CPORT + i - 1))"; done
	echo "$s"
}

write_config() {
	local i="$1" d; d="$(node_dir "$i")"
	local rf=$((NODES < 3 ? NODES : 3)) isr=$((NODES < 3 ? 1 : 2))
	# Without --proxy-node, PLAINTEXT serves clients and replication; with it, CLIENT is added.
	local listen="PLAINTEXT://127.0.0.1:$((PORT + i - 1))" adv="PLAINTEXT://127.0.0.1:$((PORT + i - 1))" map="PLAINTEXT:PLAINTEXT"
	if [ -n "$PROXY_NODE" ]; then
		local cport=$((PORT + NODES + i - 1)) aport=$((PORT + NODES + i - 1))
		if [ "$i" = "$PROXY_NODE" ]; then aport=$((PORT + 2 * NODES)); fi
		listen="$listen,CLIENT://127.0.0.1:$cport" adv="$adv,CLIENT://127.0.0.1:$aport" map="$map,CLIENT:PLAINTEXT"
	fi
	mkdir -p "$d/data"
	cat >"$d/server.properties" <<EOF
# Written by scripts/kafka.sh for node $i of $NODES (Kafka $VERSION).
process.roles=broker,controller
node.id=$i
controller.quorum.voters=$(voters)
listeners=$listen,CONTROLLER://127.0.0.1:$((CPORT + i - 1))
advertised.listeners=$adv
listener.security.protocol.map=$map,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$d/data
auto.create.topics.enable=false
num.partitions=6
default.replication.factor=$rf
min.insync.replicas=$isr
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$isr
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0
# Small: the machine has two cores and little memory to spare for three JVMs.
log.cleaner.dedupe.buffer.size=4194304
log.cleaner.threads=1
num.network.threads=2
num.io.threads=2
num.replica.fetchers=1
background.threads=2
num.recovery.threads.per.data.dir=1
log.segment.bytes=67108864
EOF
	if [ "${VERSION%%.*}" -ge 4 ]; then
		cat >"$d/log4j2.properties" <<EOF
status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.out.ref = out
logger.kafka.name = kafka
logger.kafka.level = info
logger.state.name = state.change.logger
logger.state.level = warn
logger.request.name = kafka.request.logger
logger.request.level = warn
EOF
	else
		cat >"$d/log4j.properties" <<EOF
log4j.rootLogger=INFO, out
log4j.appender.out=org.apache.log4j.ConsoleAppender
log4j.appender.out.layout=org.apache.log4j.PatternLayout
log4j.appender.out.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.request.logger=WARN
EOF
	fi
}

java_opts() {
	local d; d="$(node_dir "$1")"
	# C1 only and the serial collector: less CPU for a test cluster on two cores.
	echo "-Xms64m -Xmx$HEAP -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Djava.awt.headless=true"
	if [ "${VERSION%%.*}" -ge 4 ]; then echo "-Dlog4j2.configurationFile=$d/log4j2.properties"
	else echo "-Dlog4j.configuration=file:$d/log4j.properties"; fi
}

format() {
	local id i pids=()
	# A Kafka Uuid: 16 random bytes, URL-safe base64 without padding (StorageTool random-uuid).
	id="$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
	for i in $(seq 1 "$NODES"); do
		write_config "$i"
		# shellcheck disable=SC2046
		java -Xmx128m -XX:TieredStopAtLevel=1 $(java_opts "$i" | tail -1) -cp "$JARS/*" kafka.tools.StorageTool \
			format -t "$id" -c "$(node_dir "$i")/server.properties" >"$(node_dir "$i")/format.log" 2>&1 &
		pids+=($!)
	done
	for i in "${!pids[@]}"; do
		wait "${pids[$i]}" || die "format of node $((i + 1)) failed: $(tail -5 "$(node_dir $((i + 1)))/format.log")"
	done
	echo "$id" >"$DIR/cluster.id"
	log "formatted $NODES nodes, cluster id $id"
}

launch() {
	local i="$1" d; d="$(node_dir "$i")"
	if running "$i"; then log "node $i already runs (pid $(pid_of "$i"))"; return 0; fi
	# shellcheck disable=SC2046
	setsid java $(java_opts "$i") -cp "$JARS/*" kafka.Kafka "$d/server.properties" >>"$d/node.log" 2>&1 </dev/null &
	echo $! >"$d/pid"
	log "node $i: pid $! (pid file $d/pid, log $d/node.log)"
}

checker() {
	local bin="$ROOT/.cache/kafka/bin/brokers"
	if [ ! -x "$bin" ] || [ -n "$(find "$ROOT/scripts/kafka/brokers" -newer "$bin" -name '*.go')" ]; then
		mkdir -p "$(dirname "$bin")"
		(cd "$ROOT" && go build -o "$bin" ./scripts/kafka/brokers) || die "go build ./scripts/kafka/brokers failed"
	fi
	echo "$bin"
}

# await_brokers N: the cluster's metadata lists N brokers within 90 s, while our nodes still run.
# await_brokers N I: node I itself answers, and its metadata lists N brokers, itself among them;
# only node I's exit fails it (a node killed on purpose keeps its pid file). After a lost quorum
# a surviving broker still lists the killed nodes, so asking any broker returned at once.
await_brokers() {
	local want="$1" only="${2:-}" bin out boot nodes deadline=$((SECONDS + 90))
	bin="$(checker)"
	boot="$(bootstrap)" nodes="$(seq 1 "$NODES")"
	if [ -n "$only" ]; then boot="127.0.0.1:$((PORT + only - 1))" nodes="$only"; fi
	until out="$("$bin" -bootstrap "$boot" -want "$want" ${only:+-include "$only"} 2>&1)"; do
		for i in $nodes; do
			if ! running "$i" && [ -f "$(node_dir "$i")/pid" ]; then
				die "node $i (pid $(pid_of "$i")) exited; last lines of $(node_dir "$i")/node.log:
$(tail -20 "$(node_dir "$i")/node.log")"
			fi
		done
		[ $SECONDS -lt $deadline ] || die "the metadata did not list $want brokers within 90 s: $out"
		sleep 0.5
	done
	log "metadata: $out"
}

write_env() {
	{
		echo "VERSION=$VERSION"
		echo "NODES=$NODES"
		echo "PORT=$PORT"
		echo "CPORT=$CPORT"
		echo "HEAP=$HEAP"
		echo "PROXY_NODE=$PROXY_NODE"
	} >"$DIR/cluster.env"
}

print_env() {
	echo "KAFKA_BROKERS=$(bootstrap)"
	echo "KAFKA_DIR=$DIR"
	echo "KAFKA_VERSION=$VERSION"
	for i in $(seq 1 "$NODES"); do echo "KAFKA_NODE_${i}_PID_FILE=$(node_dir "$i")/pid"; done
	if [ -n "$PROXY_NODE" ]; then
		local i s=""
		for i in $(seq 1 "$NODES"); do
			if [ "$i" = "$PROXY_NODE" ]; then s="$s${s:+,}127.0.0.1:$((PORT + 2 * NODES))"; else s="$s${s:+,}127.0.0.1:$((PORT + NODES + i - 1))"; fi
		done
		echo "KAFKA_CLIENT_BROKERS=$s"
		echo "KAFKA_PROXY=127.0.0.1:$((PORT + 2 * NODES))->127.0.0.1:$((PORT + NODES + PROXY_NODE - 1))"
	fi
}

start() {
	need_tools
	if [ "$FRESH" = 1 ]; then
		for i in $(seq 1 9); do running "$i" && die "--fresh: node $i still runs; stop first"; done
		rm -rf "$DIR"
	fi
	fetch
	mkdir -p "$DIR"
	if [ ! -f "$DIR/cluster.id" ]; then
		write_env
		format
	fi
	for i in $(seq 1 "$NODES"); do launch "$i"; done
	await_brokers "$NODES"
	print_env
}

stop_node() {
	local i="$1" pid; pid="$(pid_of "$i")"
	if ! running "$i"; then rm -f "$(node_dir "$i")/pid"; return 0; fi
	if [ "$KILL" = 1 ]; then kill -9 "$pid"; else kill -TERM "$pid"; fi
	local grace="${2:-60}" deadline
	deadline=$((SECONDS + grace))
	while running "$i"; do
		if [ $SECONDS -ge $deadline ]; then log "node $i (pid $pid) still runs after $grace s: SIGKILL"; kill -9 "$pid" || true; fi
		sleep 0.2
	done
	rm -f "$(node_dir "$i")/pid"
	log "node $i (pid $pid) stopped"
}

case "$cmd" in
fetch) fetch ;;
start) start ;;
env) print_env ;;
status)
	[ -f "$DIR/cluster.env" ] || die "no cluster in $DIR"
	up=0
	for i in $(seq 1 "$NODES"); do
		if running "$i"; then echo "node $i: running, pid $(pid_of "$i")"; up=$((up + 1)); else echo "node $i: stopped"; fi
	done
	if [ "$up" -gt 0 ]; then "$(checker)" -bootstrap "$(bootstrap)" -want "$NODES" || exit 1; else exit 1; fi
	;;
stop)
	[ -d "$DIR" ] || exit 0
	# All at once, 20 s each: a broker's controlled shutdown needs the controller quorum, which
	# goes down with it (Kafka 3.9 has been seen to wait past a minute for it).
	for i in $(seq 1 9); do [ -f "$(node_dir "$i")/pid" ] && stop_node "$i" 20 & done
	wait
	;;
start-node)
	[ "$NODE" -le "$NODES" ] || die "node $NODE: the cluster has $NODES nodes"
	[ -f "$DIR/cluster.id" ] || die "no formatted cluster in $DIR: run start first"
	launch "$NODE"
	# Node NODE must answer and list every node that runs (others may be down on purpose).
	up=0
	for i in $(seq 1 "$NODES"); do running "$i" && up=$((up + 1)); done
	await_brokers "$up" "$NODE"
	;;
stop-node)
	[ "$NODE" -le "$NODES" ] || die "node $NODE: the cluster has $NODES nodes"
	stop_node "$NODE"
	;;
*) die "unknown command $cmd" ;;
esac
