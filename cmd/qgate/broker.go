package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/kafka"
)

// runBroker is `qgate broker`: the embedded in-memory Kafka-protocol broker (kfake) as a
// process of its own, for benchmarks and demos that want the broker outside qgate. It prints
// "broker <host:port>" on stdout once listening and stops on SIGTERM or SIGINT.
func runBroker(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("broker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:9092", "host:port to listen on (port 0: any free port); the broker advertises it, so use a dialable host")
	retention := fs.Int64("retention-bytes", 0, "keep at most this many bytes per partition, dropping the oldest (0: keep everything until the process stops)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "qgate broker: unexpected arguments %s\n", strings.Join(fs.Args(), " "))
		return 2
	}
	log, err := newLogger("info")
	if err != nil {
		fmt.Fprintf(stderr, "qgate: %v\n", err)
		return 1
	}
	defer log.Sync()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	b, err := kafka.StartEmbeddedAt(kafka.EmbeddedConfig{Addr: *addr, RetentionBytes: *retention})
	if err != nil {
		log.Error("broker could not start", zap.Error(err))
		return 1
	}
	defer b.Close()
	listen := b.Addrs()[0]
	log.Warn("IN-MEMORY KAFKA BROKER (kfake): NOT DURABLE. Everything written to it is lost when this process stops. For benchmarks and demos only; use real Kafka in production.",
		zap.String("addr", listen), zap.Int64("retentionBytesPerPartition", *retention))
	fmt.Fprintf(stdout, "broker %s\n", listen)

	var tick <-chan time.Time
	if *retention > 0 {
		t := time.NewTicker(2 * time.Second)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			log.Info("broker stopping")
			return 0
		case <-tick:
			b.ApplyRetention()
		}
	}
}
