// Command brokers asks a Kafka cluster for its metadata and exits 0 once it lists at least
// -want brokers (and, with -include, broker I among them); scripts/kafka.sh uses it to wait until
// every node has registered, and after start-node I until node I answers and lists itself.
//
//	go run ./scripts/kafka/brokers -bootstrap 127.0.0.1:19092,127.0.0.1:19093 -want 3 -within 60s
//	go run ./scripts/kafka/brokers -bootstrap 127.0.0.1:19092 -want 3 -include 1
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	kafkago "github.com/segmentio/kafka-go"
)

func main() {
	bootstrap := flag.String("bootstrap", "", "host:port of the brokers, comma separated")
	want := flag.Int("want", 1, "how many brokers the metadata must list")
	within := flag.Duration("within", 0, "keep asking this long (0: ask once)")
	include := flag.Int("include", 0, "a broker ID the metadata must list (0: any)")
	flag.Parse()
	addrs := strings.Split(*bootstrap, ",")
	if *bootstrap == "" || *want < 1 {
		fmt.Fprintln(os.Stderr, "brokers: -bootstrap host:port[,...] and -want N (N >= 1) are required")
		os.Exit(2)
	}
	deadline := time.Now().Add(*within)
	for {
		ids, err := brokerIDs(addrs)
		if err == nil && len(ids) >= *want && (*include == 0 || slices.Contains(ids, *include)) {
			fmt.Printf("brokers %v\n", ids)
			return
		}
		if time.Now().After(deadline) {
			if err != nil {
				fmt.Fprintf(os.Stderr, "brokers: %v\n", err)
			} else {
				fmt.Fprintf(os.Stderr, "brokers: metadata lists %v, want %d brokers (including %d; 0: any)\n", ids, *want, *include)
			}
			os.Exit(1)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// brokerIDs asks each address in turn (fresh connections, no cached metadata) for the brokers
// the cluster's metadata lists.
func brokerIDs(addrs []string) ([]int, error) {
	var last error
	for _, a := range addrs {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		tr := &kafkago.Transport{DialTimeout: 2 * time.Second} // fresh: no cached metadata
		client := &kafkago.Client{Addr: kafkago.TCP(a), Timeout: 3 * time.Second, Transport: tr}
		md, err := client.Metadata(ctx, &kafkago.MetadataRequest{})
		cancel()
		tr.CloseIdleConnections()
		if err != nil {
			last = err
			continue
		}
		ids := make([]int, 0, len(md.Brokers))
		for _, b := range md.Brokers {
			ids = append(ids, b.ID)
		}
		slices.Sort(ids)
		return ids, nil
	}
	return nil, last
}
