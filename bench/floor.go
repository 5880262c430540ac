package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Floor is the decode-only floor: an HTTP server that reads each body, decodes it with
// encoding/json into generic maps (what any JSON ingest must at least do) and answers 202 with
// {"accepted":N}. No validation, no envelope, no Kafka: what qgate is measured against.
type Floor struct {
	srv *http.Server
	ln  net.Listener
}

// StartFloor starts the floor on a free loopback port.
func StartFloor() (*Floor, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	f := &Floor{ln: ln, srv: &http.Server{Handler: http.HandlerFunc(floorHandle), ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = f.srv.Serve(ln) }()
	return f, nil
}

// URL is where to POST bodies.
func (f *Floor) URL() string { return "http://" + f.ln.Addr().String() + "/v1/profiles" }

// Close stops the floor.
func (f *Floor) Close() error { return f.srv.Close() }

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func floorHandle(w http.ResponseWriter, r *http.Request) {
	buf := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(buf)
	buf.Reset()
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, 5<<20)); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	n, err := DecodeOnly(buf.Bytes())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write(append(strconv.AppendInt([]byte(`{"accepted":`), int64(n), 10), '}'))
}

// DecodeOnly decodes body as the floor does and returns how many profiles it held: a batch
// ({"profiles": [...]}) into a struct of generic maps, a single profile into a generic map.
func DecodeOnly(body []byte) (int, error) {
	if bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte(`{"profiles"`)) {
		var batch struct {
			Profiles []map[string]any `json:"profiles"`
		}
		if err := json.Unmarshal(body, &batch); err != nil {
			return 0, err
		}
		if len(batch.Profiles) == 0 {
			return 0, errors.New("empty batch")
		}
		return len(batch.Profiles), nil
	}
	var p map[string]any
	if err := json.Unmarshal(body, &p); err != nil {
		return 0, err
	}
	return 1, nil
}
