package simulator

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Hostile modes: a workflow answering like a broken or malicious destination instead of like
// Qualtrics, so a gateway's client can be tried against them over HTTP.
const (
	HostileNUL            = "nul"             // an error envelope with NUL bytes in it
	HostileInvalidUTF8    = "invalid-utf8"    // an error envelope with invalid UTF-8 in it
	HostileHuge           = "huge"            // a body of Size bytes (10 MB by default)
	HostileDrip           = "drip"            // the whole response, status line first, one byte per Interval, forever
	HostileEndlessHeaders = "endless-headers" // a status line, then a ~1 KB header line per Interval, forever
	HostileRedirect       = "redirect-to"     // a 3xx to Location
)

// Defaults of Hostile.
const (
	DefaultHostileSize     int64 = 10 << 20
	DefaultHostileInterval       = time.Second
)

// Hostile makes a workflow's otherwise successful answers hostile (see the Hostile* modes). It
// applies after every check and scripted step: a call that would get 200 gets the hostile answer
// instead, and its run is recorded with Error "hostile <mode>" (a drip or endless-headers run is
// Failed: its answer never completes).
type Hostile struct {
	Mode     string        // a Hostile* mode; "" turns hostility off
	Status   int           // default 400 for nul, invalid-utf8 and huge; 200 for drip and endless-headers; 302 for redirect-to
	Size     int64         // huge: the body's length (default DefaultHostileSize)
	Interval time.Duration // drip, endless-headers: the pace (default DefaultHostileInterval)
	Location string        // redirect-to: the Location header, sent as given (required)
}

// withDefaults validates h and fills in its defaults.
func (h Hostile) withDefaults() (Hostile, error) {
	switch h.Mode {
	case "":
		return Hostile{}, nil
	case HostileNUL, HostileInvalidUTF8, HostileHuge:
		h.Status = orDefault(h.Status, http.StatusBadRequest)
	case HostileDrip, HostileEndlessHeaders:
		h.Status = orDefault(h.Status, http.StatusOK)
	case HostileRedirect:
		h.Status = orDefault(h.Status, http.StatusFound)
		if h.Status < 300 || h.Status > 399 {
			return Hostile{}, fmt.Errorf("hostile %s: status %d is not a 3xx", h.Mode, h.Status)
		}
		if h.Location == "" || strings.ContainsAny(h.Location, "\r\n") {
			return Hostile{}, fmt.Errorf("hostile %s: location is required, on one line", h.Mode)
		}
	default:
		return Hostile{}, fmt.Errorf("hostile mode %q: want one of %s", h.Mode,
			strings.Join([]string{HostileNUL, HostileInvalidUTF8, HostileHuge, HostileDrip, HostileEndlessHeaders, HostileRedirect}, ", "))
	}
	if h.Status < 100 || h.Status > 599 {
		return Hostile{}, fmt.Errorf("hostile %s: status %d out of range", h.Mode, h.Status)
	}
	if h.Size < 0 || h.Interval < 0 {
		return Hostile{}, fmt.Errorf("hostile %s: size and interval must not be negative", h.Mode)
	}
	if h.Size == 0 {
		h.Size = DefaultHostileSize
	}
	if h.Interval == 0 {
		h.Interval = DefaultHostileInterval
	}
	return h, nil
}

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// completes reports whether the client ever gets a whole answer.
func (h Hostile) completes() bool { return h.Mode != HostileDrip && h.Mode != HostileEndlessHeaders }

// SetHostile makes the workflow's answers hostile (Mode "" turns it off). It panics on an unknown
// workflow or an invalid Hostile.
func (s *Simulator) SetHostile(workflowID string, h Hostile) {
	h, err := h.withDefaults()
	must(err)
	must(s.with(workflowID, func(wf *workflow) { wf.hostile = h }))
}

// HostileJSON is a Hostile on the wire: Interval is a Go duration string ("1s").
type HostileJSON struct {
	Mode     string `json:"mode"`
	Status   int    `json:"status,omitempty"`
	Size     int64  `json:"size,omitempty"`
	Interval string `json:"interval,omitempty"`
	Location string `json:"location,omitempty"`
}

func (j HostileJSON) parse() (Hostile, error) {
	h := Hostile{Mode: j.Mode, Status: j.Status, Size: j.Size, Location: j.Location}
	if j.Interval != "" {
		d, err := time.ParseDuration(j.Interval)
		if err != nil {
			return Hostile{}, fmt.Errorf("hostile interval: %w", err)
		}
		h.Interval = d
	}
	return h.withDefaults()
}

// writeHostile answers a call as h says; it returns when the answer is written, the client has
// gone, or the simulator closes (then the connection is aborted).
func (s *Simulator) writeHostile(w http.ResponseWriter, r *http.Request, h Hostile, requestID string) {
	switch h.Mode {
	case HostileNUL, HostileInvalidUTF8:
		bad := "\x00\x00bad\x00request\x00"
		if h.Mode == HostileInvalidUTF8 {
			bad = "caf\xe9 \xff\xfe \xc3\x28 \xed\xa0\x80 \xf8\x88\x80\x80\x80"
		}
		body := `{"meta":{"httpStatus":"` + httpStatusText(h.Status) + `","requestId":"` + requestID +
			`","error":{"errorMessage":"` + bad + `","errorCode":"` + errorCode(h.Status) + `"}}}` + bad
		writeJSON(w, h.Status, []byte(body))
	case HostileHuge:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.FormatInt(h.Size, 10))
		w.WriteHeader(h.Status)
		chunk := []byte(strings.Repeat("x", 32<<10))
		for left := h.Size; left > 0; left -= int64(len(chunk)) {
			select {
			case <-r.Context().Done():
				return
			case <-s.done:
				panic(http.ErrAbortHandler)
			default:
			}
			if _, err := w.Write(chunk[:min(left, int64(len(chunk)))]); err != nil {
				return
			}
		}
	case HostileRedirect:
		w.Header().Set("Location", h.Location)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(h.Status)
		_, _ = io.WriteString(w, "<a href=\"\">Moved</a>.\n")
	case HostileDrip:
		head := fmt.Sprintf("HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
			h.Status, http.StatusText(h.Status), DefaultHostileSize)
		s.writeRaw(w, h.Interval, func(i int) string {
			if i < len(head) {
				return head[i : i+1]
			}
			return "x"
		})
	case HostileEndlessHeaders:
		line := strings.Repeat("h", 1000)
		s.writeRaw(w, h.Interval, func(i int) string {
			if i == 0 {
				return fmt.Sprintf("HTTP/1.1 %d %s\r\n", h.Status, http.StatusText(h.Status))
			}
			return "X-Sim-Filler-" + strconv.Itoa(i) + ": " + line + "\r\n"
		})
	}
}

// writeRaw takes over the connection and writes next(0), next(1), … one per interval until the
// client goes away or the simulator closes.
func (s *Simulator) writeRaw(w http.ResponseWriter, interval time.Duration, next func(int) string) {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return
	}
	gone := make(chan struct{})
	go func() { // the client closing its end ends the read
		defer close(gone)
		_, _ = io.Copy(io.Discard, readerOf(buf, conn))
	}()
	defer func() { _ = conn.Close(); <-gone }() // closing ends the reader too
	t := time.NewTicker(interval)
	defer t.Stop()
	for i := 0; ; i++ {
		if _, err := io.WriteString(conn, next(i)); err != nil {
			return
		}
		select {
		case <-t.C:
		case <-gone:
			return
		case <-s.done:
			return
		}
	}
}

// readerOf reads what the server had buffered of the connection, then the connection.
func readerOf(buf *bufio.ReadWriter, conn net.Conn) io.Reader {
	return io.MultiReader(io.LimitReader(buf.Reader, int64(buf.Reader.Buffered())), conn)
}
