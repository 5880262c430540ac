package app_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/qgate/qgate/internal/config"
)

// A client that writes its whole oversized body before reading (Python's urllib does) must
// read the 413, not a connection reset: the server drains the body it refuses.
func TestOversizedBodyWrittenFirstReads413(t *testing.T) {
	n := startNode(t, nil) // the default 5 MB limit
	key := n.createKey("ingest")
	body := bytes.Repeat([]byte(" "), 6<<20)
	for _, chunked := range []bool{false, true} {
		t.Run(fmt.Sprintf("chunked=%v", chunked), func(t *testing.T) {
			conn, err := net.Dial("tcp", strings.TrimPrefix(n.base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if err := conn.SetDeadline(time.Now().Add(60 * time.Second)); err != nil {
				t.Fatal(err)
			}
			head := "POST /v1/profiles HTTP/1.1\r\nHost: qgate\r\nContent-Type: application/json\r\nAuthorization: Bearer " + key + "\r\n"
			w := bufio.NewWriterSize(conn, 64<<10)
			if chunked {
				fmt.Fprintf(w, "%sTransfer-Encoding: chunked\r\n\r\n", head)
				for off := 0; off < len(body); off += 1 << 20 {
					fmt.Fprintf(w, "%x\r\n", 1<<20)
					w.Write(body[off : off+1<<20])
					w.WriteString("\r\n")
				}
				w.WriteString("0\r\n\r\n")
			} else {
				fmt.Fprintf(w, "%sContent-Length: %d\r\n\r\n", head, len(body))
				w.Write(body)
			}
			if err := w.Flush(); err != nil {
				t.Fatalf("writing the body: %v", err)
			}
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("reading the answer: %v", err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatalf("reading the answer's body: %v", err)
			}
			if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(string(b), "body_too_large") || !resp.Close {
				t.Fatalf("got %d (close %v) %s", resp.StatusCode, resp.Close, b)
			}
		})
	}
}

// A body declared in another charset than UTF-8 is refused (415) rather than read as UTF-8;
// a UTF-8 BOM gets a message of its own.
func TestIngestCharsetAndBOM(t *testing.T) {
	n := startNode(t, nil)
	key := n.createKey("ingest")
	good, _ := json.Marshal(sampleProfile("charset@example.com", 1))
	cases := []struct {
		name, contentType string
		body              []byte
		status            int
		code              string
	}{
		{"latin1", "application/json; charset=latin1", good, 415, "unsupported_charset"},
		{"iso-8859-1", "application/json; charset=ISO-8859-1", good, 415, "unsupported_charset"},
		{"utf-16", "application/json; charset=utf-16", good, 415, "unsupported_charset"},
		{"bom", "application/json", append([]byte{0xEF, 0xBB, 0xBF}, good...), 400, "byte_order_mark"},
		{"utf-8 declared", "application/json; charset=UTF-8", good, 202, ""},
		{"utf8 declared", "application/json; charset=utf8", good, 202, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", n.base+"/v1/profiles", bytes.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("got %d %s, want %d", resp.StatusCode, b, tc.status)
			}
			if tc.code == "" {
				return
			}
			eb := decode[struct {
				Errors []struct{ Path, Code, Message string }
			}](t, b)
			if len(eb.Errors) != 1 || eb.Errors[0].Code != tc.code || eb.Errors[0].Message == "" {
				t.Fatalf("errors: %s", b)
			}
			if tc.code == "unsupported_charset" && (eb.Errors[0].Path != "header.Content-Type" || !strings.Contains(eb.Errors[0].Message, "UTF-8")) {
				t.Fatalf("charset problem: %+v", eb.Errors[0])
			}
			if tc.code == "byte_order_mark" && !strings.Contains(eb.Errors[0].Message, "byte order mark") {
				t.Fatalf("BOM problem: %+v", eb.Errors[0])
			}
		})
	}
}

// Anonymous /readyz says only "unavailable" when the store fails; the cause goes to the log.
func TestReadyzHidesTheStoreError(t *testing.T) {
	n := startNode(t, nil)
	if status, body, _ := n.do("GET", "/readyz", "", nil); status != http.StatusOK {
		t.Fatalf("ready: %d %s", status, body)
	}
	n.app.Store().Close() // every store call now fails with "sql: database is closed"
	status, body, _ := n.do("GET", "/readyz", "", nil)
	r := decode[struct {
		Ready  bool
		Checks map[string]string
	}](t, body)
	if status != http.StatusServiceUnavailable || r.Ready || r.Checks["store"] != "unavailable" {
		t.Fatalf("readyz: %d %s", status, body)
	}
	if strings.Contains(string(body), "closed") || strings.Contains(string(body), "sql") {
		t.Fatalf("readyz shows the store error: %s", body)
	}
	if !strings.Contains(n.logs.String(), "database is closed") {
		t.Fatalf("the store error is not in the log:\n%s", n.logs)
	}
}

// With QGATE_METRICS_ADDR /metrics is served there, and no longer on the main listener.
func TestMetricsOnTheirOwnListener(t *testing.T) {
	n := startNode(t, func(c *config.Config) { c.MetricsAddr = "127.0.0.1:0" })
	addr := n.app.MetricsAddr()
	if addr == "" {
		t.Fatal("no metrics listener")
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), "qgate_") {
		t.Fatalf("metrics listener: %d %.300s", resp.StatusCode, b)
	}
	if status, body, _ := n.do("GET", "/metrics", "", nil); status != http.StatusNotFound {
		t.Fatalf("main listener still serves /metrics: %d %.300s", status, body)
	}

	plain := startNode(t, nil)
	if plain.app.MetricsAddr() != "" {
		t.Fatalf("metrics listener without QGATE_METRICS_ADDR: %s", plain.app.MetricsAddr())
	}
	if status, body, _ := plain.do("GET", "/metrics", "", nil); status != http.StatusOK || !strings.Contains(string(body), "qgate_") {
		t.Fatalf("main listener without QGATE_METRICS_ADDR: %d %.300s", status, body)
	}
}

// Every JSON endpoint, not only ingest, refuses a body declared in another charset than UTF-8
// (415 unsupported_charset) and changes nothing.
func TestOperatorEndpointsRefuseOtherCharsets(t *testing.T) {
	n := startNode(t, nil)
	key := n.createKey("operator")
	body := []byte(`{"name":"latin","url":"https://x.qualtrics.com/API/v3/events/e","username":"u","apiToken":"t0123456789",` +
		`"identityMappings":[{"source":"Email","target":"email"}],"audiences":["a1"]}`)
	req, _ := http.NewRequest("POST", n.base+"/v1/destinations", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json; charset=latin1")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 415 || !strings.Contains(string(b), `"unsupported_charset"`) || !strings.Contains(string(b), `"header.Content-Type"`) {
		t.Fatalf("POST /v1/destinations with charset=latin1: %d %s, want 415 unsupported_charset at header.Content-Type", resp.StatusCode, b)
	}
	status, list, _ := n.do("GET", "/v1/destinations", key, nil)
	if status != 200 || strings.Contains(string(list), `"latin"`) {
		t.Fatalf("a refused create changed something: %d %s", status, list)
	}
}
