package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/app"
	"github.com/qgate/qgate/internal/config"
	"github.com/qgate/qgate/internal/queue"
	"github.com/qgate/qgate/internal/receiver"
)

// nopPublisher acknowledges everything at once: what is left is validation and envelopes.
type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, []queue.Message) error { return nil }

func TestProfilesAreAcceptedAndDistinct(t *testing.T) {
	r := receiver.New(nopPublisher{}, receiver.Options{}, receiver.NewMetrics(prometheus.NewRegistry()))
	body := Body(0, 100)
	resp, err := r.Ingest(context.Background(), body)
	if err != nil || resp.Accepted != 100 {
		t.Fatalf("accepted %v, err %v: %+v", resp.Accepted, err, resp.Results[0])
	}
	if n := len(AppendProfile(nil, 12345)); n < 550 || n > 750 {
		t.Errorf("profile is %d bytes, want about 600", n)
	}
	if !bytes.Contains(Body(7, 1), []byte("person7@example.com")) || bytes.Equal(Body(0, 1), Body(1, 1)) {
		t.Error("profiles are not distinct")
	}
	if n, err := DecodeOnly(body); n != 100 || err != nil {
		t.Errorf("DecodeOnly: %d %v", n, err)
	}
	if n, err := DecodeOnly(Body(0, 1)); n != 1 || err != nil {
		t.Errorf("DecodeOnly single: %d %v", n, err)
	}
	for _, tc := range []struct {
		body string
		want int
	}{{`{"accepted":100,"results":[]}`, 100}, {`{"accepted":0}`, 0}, {`{"errors":[]}`, -1}, {`{"accepted":x}`, -1}} {
		if got := acceptedCount([]byte(tc.body)); got != tc.want {
			t.Errorf("acceptedCount(%s) = %d, want %d", tc.body, got, tc.want)
		}
	}
}

// BenchmarkIngestInProcess is the receiver's CPU per request without HTTP or Kafka: split,
// validate, key and envelope each profile.
func BenchmarkIngestInProcess(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			r := receiver.New(nopPublisher{}, receiver.Options{}, receiver.NewMetrics(prometheus.NewRegistry()))
			bodies := Bodies(256, batch)
			ctx := context.Background()
			b.SetBytes(int64(len(bodies[0])))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				resp, err := r.Ingest(ctx, bodies[i%len(bodies)])
				if err != nil || resp.Accepted != batch {
					b.Fatal(err, resp.Accepted)
				}
				i++
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/profile")
		})
	}
}

// BenchmarkDecodeFloor is the floor's CPU per request: encoding/json into generic maps.
func BenchmarkDecodeFloor(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			body := Body(0, batch)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if n, err := DecodeOnly(body); err != nil || n != batch {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/profile")
		})
	}
}

// BenchmarkIngestHTTP runs a whole qgate node in this process (embedded kfake broker, SQLite
// in a temp dir) and posts to it over loopback: one CPU profile then shows HTTP, gin,
// validation, kafka-go and the broker together (go test -bench IngestHTTP -cpuprofile).
// The load generator shares the process, so read the profile's client frames apart.
func BenchmarkIngestHTTP(b *testing.B) {
	for _, tc := range []struct{ batch, conns int }{{1, 64}, {100, 12}} {
		b.Run(fmt.Sprintf("batch=%d/conns=%d", tc.batch, tc.conns), func(b *testing.B) {
			base, key := startApp(b)
			bodies := Bodies(20000/tc.batch, tc.batch)
			client := NewClient(tc.conns)
			defer client.CloseIdleConnections()
			s := Scenario{URL: base + "/v1/profiles", Key: key, Batch: tc.batch}
			var next, failed atomic.Int64
			b.SetParallelism((tc.conns + 1) / 2) // × GOMAXPROCS (2 here) goroutines
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var buf bytes.Buffer
				for pb.Next() {
					status, err := post(context.Background(), client, s, bodies[int(next.Add(1))%len(bodies)], &buf)
					if err != nil || status != http.StatusAccepted || acceptedCount(buf.Bytes()) != tc.batch {
						if failed.Add(1) == 1 {
							b.Errorf("status %d err %v: %.200s", status, err, buf.Bytes())
						}
					}
				}
			})
			b.ReportMetric(float64(b.N*tc.batch)/b.Elapsed().Seconds(), "profiles/s")
		})
	}
}

func startApp(b *testing.B) (base, key string) {
	b.Helper()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = b.TempDir()
	cfg.AdminKey = strings.Repeat("k", 32)
	cfg.LogLevel = "warn"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := app.New(ctx, cfg, zap.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	addr, err := a.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = a.Shutdown(sctx)
	})
	base = "http://" + addr
	req, _ := http.NewRequest(http.MethodPost, base+"/v1/keys", strings.NewReader(`{"name":"bench","role":"ingest"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+cfg.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct{ Key string }
	if err := json.Unmarshal(raw, &out); err != nil || out.Key == "" {
		b.Fatalf("create key: %d %s", resp.StatusCode, raw)
	}
	return base, out.Key
}
