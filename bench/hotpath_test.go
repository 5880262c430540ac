package bench

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/delivery"
	"github.com/qgate/qgate/internal/destination"
	"github.com/qgate/qgate/internal/profile"
	"github.com/qgate/qgate/internal/qualtrics"
	"github.com/qgate/qgate/internal/router"
)

// The per-delivery hot path in one goroutine, without Kafka or the store: the router's parse of
// the update's profile, Shape for the destination, the delivery job's encoding and the
// dispatcher's decoding, and one attempt through the real qualtrics.Client to a loopback
// server. Allocations are a regression guard that is not a timing test (issue #12): see
// TestDeliveryHotPathAllocs. The bounds are today's counts (23 and 95; 35 and 110 under the race
// detector, which allocates on its own) plus a margin; lower them as the path gets leaner. (The
// job codec's move to goccy/go-json added 5 small allocations, ~0.3 µs of a 300-500 µs
// delivery: docs/benchmarks.md, "JSON codecs".)
func allocBounds() (routeAndCodec, perDelivery float64) {
	if raceEnabled {
		return 40, 125
	}
	return 27, 105 // Parse + Shape + EncodeJob + DecodeJob; the same + the attempt (net/http client)
}

// hotPath is one destination, its client and a loopback server that answers every POST 200.
type hotPath struct {
	raw    []byte
	dest   destination.Destination
	client *qualtrics.Client
	url    string
	close  func()
}

func newHotPath(tb testing.TB) *hotPath {
	tb.Helper()
	url, closeSrv := startRawSink(tb)
	h := &hotPath{
		raw: AppendRoutedProfile(nil, 42, 0),
		dest: destination.Destination{ID: "dst_hot", URL: url, Username: "u", Token: "secret-token",
			IdentityMappings: []destination.IdentityMapping{{Source: "Email", Target: destination.TargetEmail}},
			Audiences:        []string{Audience(0)}},
		client: qualtrics.NewClient(qualtrics.Options{Timeout: 5 * time.Second, UserAgent: "qgate/bench", Policy: qualtrics.HostPolicy{AllowPrivate: true}}),
		url:    url,
	}
	h.close = closeSrv
	return h
}

// route is the router's and the codec's share of one delivery; it returns the decoded job.
func (h *hotPath) route(tb testing.TB) delivery.Job {
	p, errs := profile.Parse(h.raw, profile.DefaultLimits())
	if errs != nil {
		tb.Fatal(errs)
	}
	s, err := router.Shape(&h.dest, p)
	if err != nil || s.Excluded != "" {
		tb.Fatal(err, s.Excluded)
	}
	upd := "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
	b, err := delivery.EncodeJob(delivery.Job{V: 1, DeliveryID: delivery.ID(upd, h.dest.ID), UpdateID: upd, DestinationID: h.dest.ID,
		ProfileKey: "pk", ReceivedAt: time.Unix(1700000000, 0), Generation: 3, Payload: s.Payload})
	if err != nil {
		tb.Fatal(err)
	}
	j, err := delivery.DecodeJob(b)
	if err != nil {
		tb.Fatal(err)
	}
	return j
}

// attempt is the dispatcher's attempt for j.
func (h *hotPath) attempt(tb testing.TB, j delivery.Job) {
	r := h.client.Send(context.Background(), qualtrics.Request{URL: h.dest.URL, Username: h.dest.Username, Token: h.dest.Token, Body: j.Payload, IdempotencyKey: j.DeliveryID})
	if r.Class != qualtrics.Delivered {
		tb.Fatalf("attempt: %+v", r)
	}
}

func BenchmarkDeliveryHotPath(b *testing.B) {
	h := newHotPath(b)
	defer h.close()
	b.Run("route+codec", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.route(b)
		}
	})
	b.Run("route+codec+attempt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			h.attempt(b, h.route(b))
		}
	})
}

func TestDeliveryHotPathAllocs(t *testing.T) {
	h := newHotPath(t)
	defer h.close()
	h.attempt(t, h.route(t)) // the connection and pools exist before counting
	route := testing.AllocsPerRun(200, func() { h.route(t) })
	all := testing.AllocsPerRun(200, func() { h.attempt(t, h.route(t)) })
	maxRoute, maxAll := allocBounds()
	t.Logf("allocations per delivery (race detector %v): route+codec %.0f, with the attempt %.0f", raceEnabled, route, all)
	if route > maxRoute {
		t.Errorf("route+codec: %.0f allocations per delivery, want <= %.0f", route, maxRoute)
	}
	if all > maxAll {
		t.Errorf("route+codec+attempt: %.0f allocations per delivery, want <= %.0f", all, maxAll)
	}
	if route < 1 || all <= route {
		t.Errorf("counts look wrong (route %.0f, all %.0f): is the work still done?", route, all)
	}
}

// startRawSink is an HTTP/1.1 server on loopback that answers every request 200 with a fixed
// body, reading headers and body into fixed buffers: it allocates nothing per request, so the
// allocations counted are the client's.
func startRawSink(tb testing.TB) (string, func()) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 66\r\n\r\n" +
		`{"result":{"status":"triggered"},"meta":{"httpStatus":"200 - OK"}}`)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveRaw(c, resp)
		}
	}()
	return "http://" + ln.Addr().String() + "/events/WF_hot", func() { ln.Close() }
}

func serveRaw(c net.Conn, resp []byte) {
	defer c.Close()
	r := bufio.NewReaderSize(c, 64<<10)
	cl := []byte("content-length:")
	for {
		n := -1
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				return
			}
			if len(line) <= 2 { // the blank line after the headers
				break
			}
			if len(line) > len(cl) && bytes.EqualFold(line[:len(cl)], cl) {
				v, err := strconv.Atoi(string(bytes.TrimSpace(line[len(cl):])))
				if err != nil {
					return
				}
				n = v
			}
		}
		if n < 0 {
			return
		}
		if _, err := r.Discard(n); err != nil {
			return
		}
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}
