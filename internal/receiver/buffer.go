package receiver

import (
	"net/http"
	"strings"
	"sync"

	"github.com/qgate/qgate/internal/api"
)

// A request's body and response bytes are reused across requests: nothing keeps a reference to
// either once the answer is written (profile.Parse copies each profile, the envelopes are built
// in their own buffer and handed to the producer). A request with a large body returns a buffer
// no larger than maxPooled, so a burst of 5 MB bodies does not pin memory.

type buffers struct {
	body []byte
	out  []byte
}

// maxPooled bounds the capacity of a buffer kept for reuse (a batch of 500 sample profiles is
// ~350 KB).
const maxPooled = 1 << 20

var bufferPool = sync.Pool{New: func() any { return &buffers{body: make([]byte, 0, 4<<10), out: make([]byte, 0, 256)} }}

func getBuffer() *buffers { return bufferPool.Get().(*buffers) }

func putBuffer(b *buffers) {
	if cap(b.body) > maxPooled {
		b.body = nil
	}
	if cap(b.out) > maxPooled {
		b.out = nil
	}
	b.body, b.out = b.body[:0], b.out[:0]
	bufferPool.Put(b)
}

// checkJSON is api.CheckJSON with a fast path for the Content-Type every CDP sends: the same
// answer without parsing media-type parameters into a map.
func checkJSON(r *http.Request) error {
	switch ct := r.Header.Get("Content-Type"); {
	case strings.EqualFold(ct, "application/json"), strings.EqualFold(ct, "application/json; charset=utf-8"):
		return nil
	default:
		return api.CheckJSON(r)
	}
}
