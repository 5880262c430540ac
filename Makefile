# qgate — make build test lint bench run demo
GO        ?= go
BIN       ?= bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/qgate/qgate/internal/version.Version=$(VERSION)
# PostgreSQL for the store suite: set QGATE_TEST_DATABASE_URL to run it (CI does).
export QGATE_TEST_DATABASE_URL

.PHONY: all build test test-short test-ui ui-screenshots lint fuzz bench run demo sim clean tools kafka-fetch test-kafka run-kafka

all: build test

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN)/qgate ./cmd/qgate
	$(GO) build -o $(BIN)/qualtrics-sim ./cmd/qualtrics-sim

# The whole suite with the race detector; fuzz seed corpora run as ordinary tests. One package
# at a time (-p 1): the latency and rate tests of internal/app must not share the 2 cores with
# the process-level tests of internal/e2e.
test:
	$(GO) vet ./...
	$(GO) test -race -count=1 -p 1 -timeout 20m ./...
	@if [ -z "$$QGATE_TEST_DATABASE_URL" ]; then \
		echo "NOTE: the PostgreSQL store suite was SKIPPED; set QGATE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable to run it"; \
	else echo "PostgreSQL store suite ran against $$QGATE_TEST_DATABASE_URL"; fi

# The support page in a real browser: Debian's headless Chromium driven by playwright-core
# (ui-tests/). Installs what is missing: the npm packages (npm ci, no browser download) and, when
# run as root, the chromium package. Screenshots land in ui-tests/artifacts/.
CHROMIUM ?= /usr/bin/chromium
export CHROMIUM
test-ui:
	@if [ ! -x "$(CHROMIUM)" ]; then \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; \
		else echo "test-ui: $(CHROMIUM) is missing; install Debian's chromium package (apt-get install chromium) or set CHROMIUM"; exit 1; fi; \
	fi
	@$(CHROMIUM) --version 2>/dev/null | grep -v '^$$' || true
	@node -e 'process.exit(+process.versions.node.split(".")[0] >= 20 ? 0 : 1)' 2>/dev/null || \
		{ echo "test-ui: Node.js 20 or later is needed (playwright-core's minimum); found: $$(node --version 2>&1)"; exit 1; }
	@if [ ! -d ui-tests/node_modules/playwright-core ]; then cd ui-tests && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund; fi
	cd ui-tests && npm test

# The screenshots of docs/ui.md (docs/img/ui-*.png), from a node seeded with an hour of history.
ui-screenshots:
	@if [ ! -d ui-tests/node_modules/playwright-core ]; then cd ui-tests && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund; fi
	cd ui-tests && node screenshots.mjs

lint:
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

# Explore beyond the seed corpus (not part of make test).
# One fuzz target per `go test -fuzz` run (Go's rule); FUZZTIME each.
FUZZTIME ?= 60s
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzProfile -fuzztime $(FUZZTIME) ./internal/profile
	$(GO) test -run '^$$' -fuzz FuzzScan -fuzztime $(FUZZTIME) ./internal/jsonscan
	$(GO) test -run '^$$' -fuzz FuzzEncodeJob -fuzztime $(FUZZTIME) ./internal/delivery
	$(GO) test -run '^$$' -fuzz FuzzDecodeJob -fuzztime $(FUZZTIME) ./internal/delivery
	$(GO) test -run '^$$' -fuzz FuzzDecode -fuzztime $(FUZZTIME) ./internal/update
	$(GO) test -run '^$$' -fuzz FuzzShape -fuzztime $(FUZZTIME) ./internal/router

# Benchmarks (figures in docs/benchmarks.md; ~35 minutes). On a shared machine run it as
# `flock /tmp/qgate-bench.lock make bench` so that benchmark runs do not overlap. The delivery
# figures on PostgreSQL use QBENCH_PG_URL (default: QGATE_TEST_DATABASE_URL's server), where each
# run creates and drops a fresh database; without either they are skipped, and said so.
QBENCH_PG_URL ?= $(QGATE_TEST_DATABASE_URL)
QBENCH ?= $(GO) run ./bench/cmd/qbench
bench: build
	$(QBENCH) ingest -qgate $(BIN)/qgate -runs 3
	@if [ -n "$(QBENCH_PG_URL)" ]; then \
		echo '$(QBENCH) deliver -qgate $(BIN)/qgate -runs 3 -store both -pg-url <QBENCH_PG_URL> [-lift-rate 600000]'; \
		$(QBENCH) deliver -qgate $(BIN)/qgate -runs 3 -store both -pg-url '$(QBENCH_PG_URL)' && \
		$(QBENCH) deliver -qgate $(BIN)/qgate -runs 3 -store both -pg-url '$(QBENCH_PG_URL)' -lift-rate 600000; \
	else \
		$(QBENCH) deliver -qgate $(BIN)/qgate -runs 3 -store sqlite && \
		$(QBENCH) deliver -qgate $(BIN)/qgate -runs 3 -store sqlite -lift-rate 600000 && \
		echo "NOTE: deliver on PostgreSQL was SKIPPED; set QBENCH_PG_URL or QGATE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/test?sslmode=disable"; \
	fi
	$(QBENCH) latency -qgate $(BIN)/qgate -runs 3
	@# Issue #12: the Benthos peer (bench/peer, its own module, built into .cache/peer/) and qgate
	@# back to back, 3 rounds, ~4 minutes each with PostgreSQL (the first build of the peer adds
	@# ~1.5 minutes and ~270 MB of modules from the Go module proxy).
	@if [ -n "$(QBENCH_PG_URL)" ]; then \
		echo '$(QBENCH) peer -qgate $(BIN)/qgate -runs 3 -store both -pg-url <QBENCH_PG_URL>'; \
		$(QBENCH) peer -qgate $(BIN)/qgate -runs 3 -store both -pg-url '$(QBENCH_PG_URL)'; \
	else \
		$(QBENCH) peer -qgate $(BIN)/qgate -runs 3 -store sqlite && \
		echo "NOTE: qbench peer ran qgate on SQLite only; set QBENCH_PG_URL or QGATE_TEST_DATABASE_URL for PostgreSQL"; \
	fi
	$(QBENCH) backlog -qgate $(BIN)/qgate -runs 1 -profiles 1000000 -max-time 8m
	$(GO) test -run '^$$' -bench StatusWrite -benchtime 3s -count 3 ./internal/store
	@if [ -z "$$QGATE_TEST_DATABASE_URL" ]; then \
		echo "NOTE: BenchmarkStatusWrite ran on SQLite only; set QGATE_TEST_DATABASE_URL for PostgreSQL"; fi

# The embedded default: in-memory Kafka-protocol broker and SQLite under ./data.
run:
	$(GO) run ./cmd/qgate serve

sim:
	$(GO) run ./cmd/qualtrics-sim

# A local three-node Apache Kafka cluster (scripts/kafka.sh; jars from Maven Central, cached in
# .cache/kafka/<version>/). test-kafka starts a fresh one, runs the process-level suite against it
# and stops it; KAFKA_TESTS narrows the run (a go test -run pattern), KAFKA_SKIP leaves tests out
# (a go test -skip pattern).
KAFKA_VERSION ?= 4.4.0
KAFKA_DIR     ?= .cache/kafka/cluster-$(KAFKA_VERSION)
KAFKA_TESTS   ?= .
KAFKA_SKIP    ?=
# Client ports KAFKA_PORT, +1, +2 (controllers at KAFKA_CONTROLLER_PORT, ...): set both to run a
# second cluster beside one already running. --proxy-node 3 adds the CLIENT listeners of the
# link-cut test on KAFKA_PORT+3 to +5, node 3's advertised at KAFKA_PORT+6 (docs/kafka.md).
KAFKA_PORT    ?= 19092
KAFKA_CONTROLLER_PORT ?= 19192
export KAFKA_PORT KAFKA_CONTROLLER_PORT
KAFKA_BROKERS  = 127.0.0.1:$(KAFKA_PORT),127.0.0.1:$(shell expr $(KAFKA_PORT) + 1),127.0.0.1:$(shell expr $(KAFKA_PORT) + 2)
kafka-fetch:
	scripts/kafka.sh fetch --version $(KAFKA_VERSION)

test-kafka:
	@trap 'scripts/kafka.sh stop --dir $(KAFKA_DIR)' EXIT; set -e; \
	scripts/kafka.sh start --fresh --nodes 3 --version $(KAFKA_VERSION) --dir $(KAFKA_DIR) --proxy-node 3; \
	echo "go test -race -count=1 -p 1 -timeout 30m -v -run '$(KAFKA_TESTS)' -skip '$(KAFKA_SKIP)' ./internal/e2e/ on Kafka $(KAFKA_VERSION)"; \
	QGATE_E2E_KAFKA_BROKERS=$(KAFKA_BROKERS) QGATE_E2E_KAFKA_DIR=$(abspath $(KAFKA_DIR)) \
		$(GO) test -race -count=1 -p 1 -timeout 30m -v -run '$(KAFKA_TESTS)' -skip '$(KAFKA_SKIP)' ./internal/e2e/

# qgate on the local cluster (started when it is not running; `scripts/kafka.sh stop` ends it).
run-kafka:
	scripts/kafka.sh status --dir $(KAFKA_DIR) >/dev/null 2>&1 || scripts/kafka.sh start --nodes 3 --version $(KAFKA_VERSION) --dir $(KAFKA_DIR)
	QGATE_KAFKA_BROKERS=$(KAFKA_BROKERS) QGATE_KAFKA_REPLICATION_FACTOR=3 $(GO) run ./cmd/qgate serve

demo: build
	./scripts/demo.sh

clean:
	rm -rf $(BIN)
