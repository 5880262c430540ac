package receiver_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/qgate/qgate/internal/access"
	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/queue"
	"github.com/qgate/qgate/internal/receiver"
)

// ackAll acknowledges every Publish at once.
type ackAll struct{}

func (ackAll) Publish(context.Context, []queue.Message) error { return nil }

// oneKey is a key store holding one key.
type oneKey struct{ k access.Key }

func (s oneKey) CreateKey(context.Context, access.Key) error { return nil }
func (s oneKey) GetKey(_ context.Context, id string) (access.Key, error) {
	if id != s.k.ID {
		return access.Key{}, access.ErrNotFound
	}
	return s.k, nil
}
func (s oneKey) ListKeys(context.Context) ([]access.Key, error)     { return []access.Key{s.k}, nil }
func (s oneKey) RevokeKey(context.Context, string, time.Time) error { return nil }

// ingestChain is POST /v1/profiles as the node serves it: the node's middleware (recovery,
// access log at info level, request metrics), bearer authentication and the receiver.
func ingestChain(t testing.TB, pub receiver.Publisher) (http.Handler, string) {
	t.Helper()
	secret, key, err := access.Generate("bench", access.RoleIngest, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), zapcore.AddSync(io.Discard), zap.InfoLevel))
	reg := prometheus.NewRegistry()
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.ContextWithFallback = true
	e.Use(api.Recovery(log), api.AccessLog(log), api.RequestMetrics(reg))
	r := receiver.New(pub, receiver.Options{}, receiver.NewMetrics(reg))
	r.Register(e.Group("/v1", access.Require(access.NewAuthenticator(oneKey{key}, ""), access.RoleIngest)))
	return e, secret
}

// replay is a request whose body can be read again, and a response writer that keeps nothing
// between requests: what is measured is the handler's, not the harness's.
type replay struct {
	req  *http.Request
	body *bytes.Reader
	raw  []byte
}

func newReplay(t testing.TB, secret string, body []byte) *replay {
	t.Helper()
	rp := &replay{body: bytes.NewReader(body), raw: body}
	req, err := http.NewRequest(http.MethodPost, "/v1/profiles", io.NopCloser(rp.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	req.ContentLength = int64(len(body))
	rp.req = req
	return rp
}

type sinkWriter struct {
	h      http.Header
	status int
	body   bytes.Buffer
}

func (w *sinkWriter) Header() http.Header         { return w.h }
func (w *sinkWriter) Write(b []byte) (int, error) { return w.body.Write(b) }
func (w *sinkWriter) WriteHeader(s int)           { w.status = s }

func (rp *replay) serve(h http.Handler, w *sinkWriter) {
	rp.body.Reset(rp.raw)
	clear(w.h)
	w.status = 0
	w.body.Reset()
	h.ServeHTTP(w, rp.req)
}

func sampleBody(t testing.TB, batch int) []byte {
	t.Helper()
	one, err := os.ReadFile("../../testdata/profiles/good/brief-sample.json")
	if err != nil {
		t.Fatal(err)
	}
	one = bytes.TrimSpace(one)
	if batch == 1 {
		return one
	}
	var b bytes.Buffer
	b.WriteString(`{"profiles":[`)
	for i := range batch {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(one)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// maxAllocsBatch1 bounds the allocations of one batch-1 ingest request through the whole
// handler chain (middleware, authentication, validation, envelope, verdict). It is a
// regression guard, not a timing test: a change that adds per-request allocations on the hot
// path fails it. The race detector adds its own (raceAllocs).
const maxAllocsBatch1 = 30

func TestIngestRequestAllocs(t *testing.T) {
	h, secret := ingestChain(t, ackAll{})
	rp := newReplay(t, secret, sampleBody(t, 1))
	w := &sinkWriter{h: http.Header{}}
	rp.serve(h, w) // warm: the key lookup is cached from here on
	if w.status != http.StatusAccepted {
		t.Fatalf("status %d: %s", w.status, w.body.Bytes())
	}
	allocs := testing.AllocsPerRun(500, func() { rp.serve(h, w) })
	if w.status != http.StatusAccepted || !bytes.Contains(w.body.Bytes(), []byte(`"status":"accepted"`)) {
		t.Fatalf("status %d: %s", w.status, w.body.Bytes())
	}
	t.Logf("%.1f allocations per batch-1 request (bound %d + %d under -race)", allocs, maxAllocsBatch1, raceAllocs)
	if allocs > maxAllocsBatch1+raceAllocs {
		t.Errorf("%.1f allocations per batch-1 ingest request, want at most %d", allocs, maxAllocsBatch1+raceAllocs)
	}
}

// BenchmarkIngestRequest is one ingest request through the whole handler chain with a
// publisher that acknowledges at once: the node's CPU per request besides net/http and Kafka.
func BenchmarkIngestRequest(b *testing.B) {
	for _, batch := range []int{1, 100} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			h, secret := ingestChain(b, ackAll{})
			rp := newReplay(b, secret, sampleBody(b, batch))
			w := &sinkWriter{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				rp.serve(h, w)
				if w.status != http.StatusAccepted {
					b.Fatalf("status %d: %s", w.status, w.body.Bytes())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/profile")
		})
	}
}
