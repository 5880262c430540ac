package receiver

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/fault"
)

// Codes of problems with how the body is sent.
const (
	CodeUnsupportedCharset = api.CodeUnsupportedCharset
	CodeByteOrderMark      = "byte_order_mark"
)

// Bounds of the discard that lets a client which writes its whole body before reading see the
// 413: without it the server closes a connection with unread bytes and the client sees a reset.
const (
	discardMaxBytes = 64 << 20
	discardTimeout  = 30 * time.Second
)

// bom is the UTF-8 byte order mark, which JSON (RFC 8259 §8.1) must not start with.
var bom = []byte{0xEF, 0xBB, 0xBF}

// checkBOM gives a body that starts with a UTF-8 byte order mark its own message: it is
// otherwise valid JSON, and "not valid JSON at byte 0" sends the reader looking elsewhere.
func checkBOM(body []byte) error {
	if !bytes.HasPrefix(body, bom) {
		return nil
	}
	return fault.New(fault.Malformed, "", CodeByteOrderMark,
		"the body starts with a UTF-8 byte order mark (bytes EF BB BF); send the JSON without it (most tools have an option such as encoding=utf-8 instead of utf-8-sig)")
}

// discardRest reads and drops what is left of an oversized body, up to discardMaxBytes and
// discardTimeout, and asks for the connection to be closed after the answer. A client that
// writes the whole body before reading then reads the 413 instead of a connection reset. A
// client that waits for "100 Continue" has sent nothing: it is answered at once.
func discardRest(c *gin.Context) {
	c.Header("Connection", "close")
	if strings.EqualFold(c.Request.Header.Get("Expect"), "100-continue") {
		return
	}
	if c.Request.ContentLength > discardMaxBytes {
		return
	}
	_ = http.NewResponseController(c.Writer).SetReadDeadline(time.Now().Add(discardTimeout))
	_, _ = io.CopyN(io.Discard, c.Request.Body, discardMaxBytes)
}
