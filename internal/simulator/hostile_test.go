package simulator

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// rawCall sends a valid event call on a fresh connection and returns it, for reading the answer
// byte by byte.
func rawCall(t *testing.T, srv *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	body := `{"e":1}`
	fmt.Fprintf(c, "POST /events/%s HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\nX-API-TOKEN: %s\r\nContent-Length: %d\r\n\r\n%s",
		wfID, wfToken, len(body), body)
	return c
}

// readFor reads from c for d and returns what arrived.
func readFor(t *testing.T, c net.Conn, d time.Duration) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	b, _ := io.ReadAll(c) // ends at the deadline
	return b
}

func noRedirect() *http.Client {
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func post(t *testing.T, client *http.Client, url string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, jsonBody(`{"e":1}`))
	for k, v := range jsonHeaders() {
		req.Header.Set(k, v)
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestHostileBodies(t *testing.T) {
	sim, srv := startSim(t, Config{})
	url := sim.EventURL(srv.URL, wfID)

	sim.SetHostile(wfID, Hostile{Mode: HostileNUL})
	resp, b := post(t, http.DefaultClient, url)
	if resp.StatusCode != 400 || !bytes.Contains(b, []byte{0}) || !bytes.HasPrefix(b, []byte(`{"meta":{"httpStatus":"400 - Bad Request"`)) {
		t.Errorf("nul: %d %q", resp.StatusCode, b)
	}

	sim.SetHostile(wfID, Hostile{Mode: HostileInvalidUTF8, Status: 422})
	resp, b = post(t, http.DefaultClient, url)
	if resp.StatusCode != 422 || utf8.Valid(b) {
		t.Errorf("invalid-utf8: %d valid=%v %q", resp.StatusCode, utf8.Valid(b), b)
	}

	sim.SetHostile(wfID, Hostile{Mode: HostileHuge, Status: 200})
	resp, b = post(t, http.DefaultClient, url)
	if resp.StatusCode != 200 || int64(len(b)) != DefaultHostileSize || resp.ContentLength != DefaultHostileSize {
		t.Errorf("huge: %d, %d bytes (Content-Length %d)", resp.StatusCode, len(b), resp.ContentLength)
	}

	sim.SetHostile(wfID, Hostile{Mode: HostileRedirect, Status: 307, Location: "http://10.0.0.1/steal"})
	resp, _ = post(t, noRedirect(), url)
	if resp.StatusCode != 307 || resp.Header.Get("Location") != "http://10.0.0.1/steal" {
		t.Errorf("redirect-to: %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	sim.SetHostile(wfID, Hostile{})
	if resp, b = post(t, http.DefaultClient, url); resp.StatusCode != 200 {
		t.Errorf("off again: %d %s", resp.StatusCode, b)
	}

	runs := sim.Runs(wfID)
	want := []struct {
		status  int
		outcome string
		err     string
	}{
		{400, OutcomeFailed, "hostile nul"},
		{422, OutcomeFailed, "hostile invalid-utf8"},
		{200, OutcomeSuccessful, "hostile huge"},
		{307, OutcomeFailed, "hostile redirect-to"},
		{200, OutcomeSuccessful, ""},
	}
	if len(runs) != len(want) {
		t.Fatalf("%d runs, want %d", len(runs), len(want))
	}
	for i, w := range want {
		if runs[i].Status != w.status || runs[i].Outcome != w.outcome || runs[i].Error != w.err {
			t.Errorf("run %d = %d %s %q, want %d %s %q", i, runs[i].Status, runs[i].Outcome, runs[i].Error, w.status, w.outcome, w.err)
		}
	}
}

// TestHostileHugeStopsWhenClientLeaves: a client reading a little of the huge body and closing
// frees the handler; the server never holds the body in memory.
func TestHostileHugeStopsWhenClientLeaves(t *testing.T) {
	sim, srv := startSim(t, Config{})
	sim.SetHostile(wfID, Hostile{Mode: HostileHuge, Size: 1 << 30})
	c := rawCall(t, srv)
	r := bufio.NewReader(c)
	if line, _ := r.ReadString('\n'); !strings.HasPrefix(line, "HTTP/1.1 400") {
		t.Fatalf("status line %q", line)
	}
	c.Close()
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the huge answer's handler did not return after the client left")
	}
}

func TestHostileDrip(t *testing.T) {
	sim, srv := startSim(t, Config{})
	sim.SetHostile(wfID, Hostile{Mode: HostileDrip, Interval: 100 * time.Millisecond})
	c := rawCall(t, srv)
	got := readFor(t, c, 550*time.Millisecond)
	// One byte at once, then one per 100 ms: about 6 in 550 ms; never the whole status line.
	if len(got) < 3 || len(got) > 8 || !strings.HasPrefix("HTTP/1.1 200 OK\r\n", string(got)) {
		t.Fatalf("dripped %q in 550 ms", got)
	}
	runs := sim.Runs(wfID)
	if len(runs) != 1 || runs[0].Outcome != OutcomeFailed || runs[0].Error != "hostile drip" {
		t.Fatalf("runs = %+v", runs)
	}
	// Close aborts the drip at once.
	start := time.Now()
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v with a drip in progress", d)
	}
}

func TestHostileEndlessHeaders(t *testing.T) {
	sim, srv := startSim(t, Config{})
	sim.SetHostile(wfID, Hostile{Mode: HostileEndlessHeaders, Interval: 20 * time.Millisecond})
	c := rawCall(t, srv)
	got := string(readFor(t, c, 500*time.Millisecond))
	lines := strings.Count(got, "\r\nX-Sim-Filler-")
	if !strings.HasPrefix(got, "HTTP/1.1 200 OK\r\nX-Sim-Filler-1: hhh") || lines < 5 || strings.Contains(got, "\r\n\r\n") {
		t.Fatalf("got %d header lines: %.80q…", lines, got)
	}
	// The client leaving frees the handler.
	c.Close()
	done := make(chan struct{})
	go func() { srv.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not return after the client left")
	}
	if runs := sim.Runs(wfID); len(runs) != 1 || runs[0].Outcome != OutcomeFailed || runs[0].Status != 200 {
		t.Fatalf("runs = %+v", runs)
	}
}

// TestHostileAfterChecks: hostility replaces only what would have been a 200: auth, validation,
// the rate limit and scripted steps come first.
func TestHostileAfterChecks(t *testing.T) {
	sim, srv := startSim(t, Config{})
	url := sim.EventURL(srv.URL, wfID)
	sim.SetHostile(wfID, Hostile{Mode: HostileNUL})
	sim.Script(wfID, Step{Status: 503})
	if got := do(t, nil, "POST", url, jsonHeaders("X-API-TOKEN", "wrong"), []byte(`{}`)); got.Status != 401 {
		t.Errorf("bad token: %d", got.Status)
	}
	if got := do(t, nil, "POST", url, jsonHeaders(), []byte(`nope`)); got.Status != 400 || bytes.Contains(got.Raw, []byte{0}) {
		t.Errorf("invalid JSON: %d %q", got.Status, got.Raw)
	}
	if got := do(t, nil, "POST", url, jsonHeaders(), []byte(`{}`)); got.Status != 503 {
		t.Errorf("scripted: %d", got.Status)
	}
	if resp, b := post(t, http.DefaultClient, url); resp.StatusCode != 400 || !bytes.Contains(b, []byte{0}) {
		t.Errorf("hostile: %d %q", resp.StatusCode, b)
	}
	sim.Reset(wfID)
	if resp, _ := post(t, http.DefaultClient, url); resp.StatusCode != 200 {
		t.Errorf("after reset: %d", resp.StatusCode)
	}
}

func TestHostileControlAPI(t *testing.T) {
	sim, srv := startSim(t, Config{})
	faults := srv.URL + "/_control/workflows/" + wfID + "/faults"
	for _, bad := range []string{
		`{"hostile": {"mode": "explode"}}`,
		`{"hostile": {"mode": "redirect-to"}}`,
		`{"hostile": {"mode": "redirect-to", "location": "http://x/", "status": 200}}`,
		`{"hostile": {"mode": "drip", "interval": "soon"}}`,
		`{"hostile": {"mode": "huge", "size": -1}}`,
		`{"hostile": {"mode": "nul", "status": 700}}`,
	} {
		if got := do(t, nil, "PUT", faults, nil, []byte(bad)); got.Status != 400 || got.Env.Meta.Error == nil {
			t.Errorf("%s: %d %s", bad, got.Status, got.Raw)
		}
	}
	got := do(t, nil, "PUT", faults, nil, []byte(`{"hostile": {"mode": "redirect-to", "status": 301, "location": "http://169.254.169.254/"}}`))
	if got.Status != 200 || !strings.Contains(string(got.Raw), `"hostile":"redirect-to"`) {
		t.Fatalf("set: %d %s", got.Status, got.Raw)
	}
	resp, _ := post(t, noRedirect(), sim.EventURL(srv.URL, wfID))
	if resp.StatusCode != 301 || resp.Header.Get("Location") != "http://169.254.169.254/" {
		t.Errorf("answer %d Location %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if got := do(t, nil, "PUT", faults, nil, []byte(`{"hostile": {"mode": ""}}`)); got.Status != 200 || !strings.Contains(string(got.Raw), `"hostile":""`) {
		t.Fatalf("clear: %d %s", got.Status, got.Raw)
	}
	if resp, _ := post(t, noRedirect(), sim.EventURL(srv.URL, wfID)); resp.StatusCode != 200 {
		t.Errorf("cleared: %d", resp.StatusCode)
	}
}
