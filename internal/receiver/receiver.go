// Package receiver owns ingest: POST /v1/profiles validates each profile update, queues the
// accepted ones on the log in one acks=all write, and answers with a verdict per profile only
// after the log acknowledged them.
package receiver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/qgate/qgate/internal/api"
	"github.com/qgate/qgate/internal/fault"
	"github.com/qgate/qgate/internal/profile"
	"github.com/qgate/qgate/internal/queue"
	"github.com/qgate/qgate/internal/update"
)

// Publisher writes messages to the profile-updates topic and returns only once every message
// is acknowledged by all in-sync replicas. On failure its error may implement
// queue.PartialError to say which messages were not written.
type Publisher interface {
	Publish(ctx context.Context, msgs []queue.Message) error
}

// Options configure the receiver.
type Options struct {
	MaxBodyBytes    int64 // 413 above it (default 5 MB)
	MaxBatch        int   // 400 above it (default 500)
	MaxProfileBytes int   // one profile's size; larger ones are rejected (default 512 KB)
	Limits          profile.Limits
	ProduceTimeout  time.Duration // how long to wait for acks before answering 503
	RetryAfter      time.Duration // Retry-After on 503 (default 2s)
	Now             func() time.Time
}

// Receiver serves ingest.
type Receiver struct {
	pub      Publisher
	opts     Options
	metrics  *Metrics
	draining atomic.Bool
}

// New returns a receiver publishing through pub.
func New(pub Publisher, opts Options, m *Metrics) *Receiver {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 5 << 20
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 500
	}
	if opts.MaxProfileBytes <= 0 {
		opts.MaxProfileBytes = 512 << 10
	}
	if opts.Limits == (profile.Limits{}) {
		opts.Limits = profile.DefaultLimits()
	}
	if opts.ProduceTimeout <= 0 {
		opts.ProduceTimeout = 10 * time.Second
	}
	if opts.RetryAfter <= 0 {
		opts.RetryAfter = 2 * time.Second
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Receiver{pub: pub, opts: opts, metrics: m}
}

// Drain makes ingest answer 503 from now on (graceful shutdown).
func (r *Receiver) Drain() { r.draining.Store(true) }

// Draining reports whether Drain was called (readiness fails from then on).
func (r *Receiver) Draining() bool { return r.draining.Load() }

// Verdict statuses.
const (
	StatusAccepted    = "accepted"
	StatusRejected    = "rejected"
	StatusUnavailable = "unavailable" // valid, but the log did not acknowledge it: safe to retry
)

// Result is the verdict on one profile of a request.
type Result struct {
	Index    int             `json:"index"`
	UpdateID string          `json:"updateId,omitempty"`
	Status   string          `json:"status"`
	Errors   []fault.Problem `json:"errors,omitempty"`
}

// Response is the body of 202, 422 and the 503 that follows validation.
type Response struct {
	Accepted int      `json:"accepted"`
	Results  []Result `json:"results"`
}

// Codes of request-level problems.
const (
	CodeTooManyProfiles  = "too_many_profiles"
	CodeEmptyBatch       = "empty_batch"
	CodeMalformedJSON    = "malformed_json"
	CodeBodyTooLarge     = "body_too_large"
	CodeProfileTooLarge  = "profile_too_large"
	CodeQueueUnavailable = "queue_unavailable"
	CodeShuttingDown     = "shutting_down"
)

// Messages of an `unavailable` verdict.
const (
	msgNotWritten   = "the queue did not acknowledge this profile and it was not written; it was not accepted and is safe to send again"
	msgMaybeWritten = "the queue did not acknowledge this profile in time; it was not accepted, but it may still have been written (then it is delivered), so sending it again may deliver it twice"
)

// errProduceTimeout is the cause of a Publish that ran out of ProduceTimeout.
var errProduceTimeout = errors.New("kafka did not acknowledge in time")

// Register adds POST /profiles to g (which must already require the ingest role).
func (r *Receiver) Register(g gin.IRoutes) { g.POST("/profiles", r.handle) }

func (r *Receiver) handle(c *gin.Context) {
	if r.draining.Load() {
		api.Fail(c, &fault.Error{Kind: fault.Unavailable, RetryAfter: r.opts.RetryAfter,
			Problems: []fault.Problem{{Code: CodeShuttingDown, Message: "this node is shutting down; retry on another node or shortly"}}})
		return
	}
	buf := getBuffer()
	defer putBuffer(buf)
	body, err := r.readBody(c, buf.body[:0])
	buf.body = body
	if err != nil {
		r.metrics.request(api.Status(err))
		api.Fail(c, err)
		return
	}
	resp, err := r.Ingest(c.Request.Context(), body)
	if err != nil && resp == nil {
		r.metrics.request(api.Status(err))
		api.Fail(c, err)
		return
	}
	status := http.StatusAccepted
	switch {
	case err != nil:
		status = http.StatusServiceUnavailable
		c.Header("Retry-After", strconv.Itoa(int(r.opts.RetryAfter/time.Second)))
		_ = c.Error(err)
	case resp.Accepted == 0:
		status = http.StatusUnprocessableEntity
	}
	r.metrics.request(status)
	if b, ok := appendResponse(buf.out[:0], resp); ok {
		buf.out = b
		// What c.Data does, without building the Content-Type value per request.
		c.Writer.Header()["Content-Type"] = jsonContentType
		c.Writer.WriteHeader(status)
		_, _ = c.Writer.Write(b)
		return
	}
	c.JSON(status, resp)
}

// jsonContentType is the Content-Type of every verdict (net/http and gin only read it).
var jsonContentType = []string{"application/json; charset=utf-8"}

// appendResponse encodes resp exactly as encoding/json does, without reflection, when no
// verdict carries errors (the common all-accepted answer); it reports false otherwise and the
// caller falls back to encoding/json. Update IDs are generated ASCII, statuses constants.
func appendResponse(b []byte, resp *Response) ([]byte, bool) {
	b = append(b, `{"accepted":`...)
	b = strconv.AppendInt(b, int64(resp.Accepted), 10)
	b = append(b, `,"results":`...)
	if resp.Results == nil {
		return append(b, "null}"...), true
	}
	b = append(b, '[')
	for i := range resp.Results {
		res := &resp.Results[i]
		if len(res.Errors) > 0 || !plainASCII(res.UpdateID) || !plainASCII(res.Status) {
			return nil, false
		}
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"index":`...)
		b = strconv.AppendInt(b, int64(res.Index), 10)
		if res.UpdateID != "" {
			b = append(b, `,"updateId":"`...)
			b = append(b, res.UpdateID...)
			b = append(b, '"')
		}
		b = append(b, `,"status":"`...)
		b = append(b, res.Status...)
		b = append(b, `"}`...)
	}
	return append(b, "]}"...), true
}

// plainASCII reports whether s needs no escaping in a JSON string (encoding/json escapes
// quotes, backslashes, control characters and <, >, &).
func plainASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// readBody reads the body into buf (reused across requests: see getBuffer) and returns it.
func (r *Receiver) readBody(c *gin.Context, buf []byte) ([]byte, error) {
	if err := checkJSON(c.Request); err != nil {
		return buf, err
	}
	max := r.opts.MaxBodyBytes
	tooLarge := func() error {
		return fault.New(fault.TooLarge, "", CodeBodyTooLarge, fmt.Sprintf("the body exceeds %d bytes; send fewer profiles per request", max))
	}
	if c.Request.ContentLength > max {
		discardRest(c)
		return buf, tooLarge()
	}
	size := c.Request.ContentLength
	if size < 0 || size > max {
		size = 32 << 10
	}
	if int64(cap(buf)) < size+1 {
		buf = make([]byte, 0, size+1)
	}
	lr := io.LimitedReader{R: c.Request.Body, N: max + 1}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return buf, fault.New(fault.Malformed, "", "unreadable_body", "the request body could not be read")
		}
	}
	if int64(len(buf)) > max {
		discardRest(c)
		return buf, tooLarge()
	}
	if err := checkBOM(buf); err != nil {
		return buf, err
	}
	return buf, nil
}

// envelopeOverhead bounds an envelope's bytes besides its profile and key: field names,
// version, update ID, timestamp, and the key's JSON quoting of generated ASCII.
const envelopeOverhead = 160

// envelopeBufSize sizes the shared envelope buffer for the profiles still to encode.
func envelopeBufSize(raws []json.RawMessage, maxProfile int) int {
	n := 0
	for _, raw := range raws {
		if len(raw) <= maxProfile {
			n += len(raw) + envelopeOverhead + 2*128
		}
	}
	return n
}

// single is what Ingest allocates for a one-profile request.
type single struct {
	resp Response
	res  [1]Result
	msg  [1]queue.Message
	idx  [1]int
}

// Ingest validates body and queues the accepted profiles. It returns a response and no error
// when the log acknowledged every accepted profile (or none was accepted); a response and an
// error wrapping fault.Unavailable when the log failed after validation; and no response with a
// request-level error (malformed JSON, too many profiles) when nothing could be judged.
func (r *Receiver) Ingest(ctx context.Context, body []byte) (*Response, error) {
	raws, err := profile.SplitBody(body, r.opts.MaxBatch)
	switch {
	case errors.Is(err, profile.ErrTooMany):
		return nil, fault.New(fault.Malformed, "profiles", CodeTooManyProfiles, fmt.Sprintf("send at most %d profiles per request", r.opts.MaxBatch))
	case errors.Is(err, profile.ErrEmpty):
		return nil, fault.New(fault.Malformed, "profiles", CodeEmptyBatch, "the profiles array is empty")
	case err != nil:
		return nil, fault.New(fault.Malformed, "", CodeMalformedJSON, "the body is not valid JSON of one profile or {\"profiles\": [...]}: "+err.Error())
	}

	now := r.opts.Now().UTC()
	var resp *Response
	var msgs []queue.Message
	var idx []int // msgs[i] is results[idx[i]]
	if len(raws) == 1 {
		// The batch-1 hot path: its response, verdict and message in one allocation.
		one := new(single)
		resp, msgs, idx = &one.resp, one.msg[:0], one.idx[:0]
		resp.Results = one.res[:]
	} else {
		resp = &Response{Results: make([]Result, len(raws))}
		msgs = make([]queue.Message, 0, len(raws))
		idx = make([]int, 0, len(raws))
	}
	// One buffer holds every envelope of the request: each profile's envelope is at most its
	// raw bytes plus the envelope's fields (the key is bounded below: it is carried twice).
	var envBuf []byte
	for i, raw := range raws {
		res := &resp.Results[i]
		res.Index = i
		if len(raw) > r.opts.MaxProfileBytes {
			res.Status = StatusRejected
			res.Errors = []fault.Problem{{Code: CodeProfileTooLarge, Message: fmt.Sprintf("the profile is %d bytes; at most %d are accepted", len(raw), r.opts.MaxProfileBytes)}}
			r.metrics.rejected(CodeProfileTooLarge)
			continue
		}
		p, ferrs := profile.Parse(raw, r.opts.Limits)
		if ferrs != nil {
			res.Status = StatusRejected
			res.Errors = make([]fault.Problem, len(ferrs))
			for j, fe := range ferrs {
				res.Errors[j] = fault.Problem{Path: fe.Path, Code: fe.Code, Message: fe.Message}
			}
			r.metrics.rejected(ferrs[0].Code)
			continue
		}
		res.UpdateID = update.NewID()
		key := p.Key()
		need := 2*len(key) + len(p.Raw) + envelopeOverhead
		if cap(envBuf)-len(envBuf) < need {
			envBuf = make([]byte, 0, max(need, envelopeBufSize(raws[i:], r.opts.MaxProfileBytes)))
		}
		start := len(envBuf)
		envBuf = append(envBuf, key...)
		envBuf = update.AppendEncode(envBuf, update.Envelope{V: update.Version, UpdateID: res.UpdateID, ReceivedAt: now, ProfileKey: key, Profile: p.Raw})
		msgs = append(msgs, queue.Message{
			Key:   envBuf[start : start+len(key) : start+len(key)],
			Value: envBuf[start+len(key) : len(envBuf) : len(envBuf)],
		})
		idx = append(idx, i)
	}
	if len(msgs) == 0 {
		return resp, nil
	}

	pctx, cancel := context.WithTimeoutCause(ctx, r.opts.ProduceTimeout, errProduceTimeout)
	start := time.Now()
	err = r.pub.Publish(pctx, msgs)
	cancel()
	r.metrics.produce.Observe(time.Since(start).Seconds())
	if err == nil {
		for _, i := range idx {
			resp.Results[i].Status = StatusAccepted
		}
		resp.Accepted = len(msgs)
		r.metrics.accepted.Add(float64(len(msgs)))
		return resp, nil
	}
	var partial queue.PartialError
	isPartial := errors.As(err, &partial)
	// A publisher that knows the unacknowledged messages were never written says so; otherwise
	// (a timeout with a request on the wire) they may still land, and a resend may duplicate.
	var mw interface{ MaybeWritten() bool }
	msg := msgMaybeWritten
	if errors.As(err, &mw) && !mw.MaybeWritten() {
		msg = msgNotWritten
	}
	for m, i := range idx {
		res := &resp.Results[i]
		if isPartial && !partial.NotWritten(m) {
			res.Status = StatusAccepted
			resp.Accepted++
			r.metrics.accepted.Inc()
			continue
		}
		res.Status = StatusUnavailable
		res.UpdateID = ""
		res.Errors = []fault.Problem{{Code: CodeQueueUnavailable, Message: msg}}
		r.metrics.unavailable.Inc()
	}
	return resp, fmt.Errorf("%w: publish: %w", fault.Unavailable, err)
}
