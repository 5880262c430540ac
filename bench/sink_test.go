package bench

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/qgate/qgate/internal/receiver"
)

func TestRoutedProfilesAreAccepted(t *testing.T) {
	r := receiver.New(nopPublisher{}, receiver.Options{}, receiver.NewMetrics(prometheus.NewRegistry()))
	for _, batch := range []int{1, 100} {
		body := AppendRoutedBody(nil, 500, batch, 7)
		resp, err := r.Ingest(context.Background(), body)
		if err != nil || resp.Accepted != batch {
			t.Fatalf("batch %d: accepted %d, err %v: %+v", batch, resp.Accepted, err, resp.Results[0])
		}
	}
	p := AppendRoutedProfile(nil, 42, 3)
	if !bytes.Contains(p, []byte(Audience(3))) || bytes.Contains(p, []byte(Audience(4))) {
		t.Errorf("profile 42 should be in audience 3 only: %s", p)
	}
	if Audience(3) == Audience(4) || len(Audience(3)) != 36 {
		t.Errorf("audiences: %q %q", Audience(3), Audience(4))
	}
}

func TestProfileNumber(t *testing.T) {
	for _, tc := range []struct {
		body string
		want int
	}{
		{`{"identityMap":{"Email":[{"id":"person123@example.com"}]}}`, 123},
		{`{"x":"person","identityMap":{"Email":[{"id":"person7@example.com"}]}}`, 7},
		{`{"identityMap":{"Email":[{"id":"person@example.com"}]}}`, -1},
		{`{}`, -1},
	} {
		if got := ProfileNumber([]byte(tc.body)); got != tc.want {
			t.Errorf("ProfileNumber(%s) = %d, want %d", tc.body, got, tc.want)
		}
	}
	if got := ProfileNumber(AppendRoutedProfile(nil, 98765, 1)); got != 98765 {
		t.Errorf("routed profile: %d", got)
	}
}

func TestSinkCountsAndTracks(t *testing.T) {
	s, err := StartSink(SinkOptions{DedupKeys: true, Track: 10})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	post := func(key, body string) int {
		req, _ := http.NewRequest(http.MethodPost, s.EventURL("WF_1"), strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	before := time.Now()
	if c := post("k1", `{"identityMap":{"Email":[{"id":"person3@example.com"}]}}`); c != 200 {
		t.Fatalf("status %d", c)
	}
	post("k1", `{"identityMap":{"Email":[{"id":"person3@example.com"}]}}`)
	at, ok := s.FirstArrival(3)
	if !ok || at.Before(before) {
		t.Errorf("first arrival of 3: %v %v", at, ok)
	}
	if _, ok := s.FirstArrival(4); ok {
		t.Error("4 never arrived")
	}
	s.SetStatus(503)
	if c := post("k2", `{}`); c != 503 {
		t.Errorf("status %d, want 503", c)
	}
	if got := s.Counts(); got.Conns < 1 || got != (SinkCounts{Arrivals: 3, OK: 2, Duplicates: 1, Conns: got.Conns}) {
		t.Errorf("counts %+v", got)
	}
}
