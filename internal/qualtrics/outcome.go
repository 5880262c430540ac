package qualtrics

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Class of a delivery attempt's outcome.
type Class int

const (
	Delivered        Class = iota // 2xx
	Retryable                     // 408, 425, 429, 5xx, timeouts, connection errors, caller cancellation
	DestinationFault              // 401, 403, SSRF-blocked, bad certificate: the destination's config is wrong; circuit opens, nothing dropped
	Permanent                     // other 4xx (and 3xx since redirects are not followed): dead-letter at once
)

// String returns the lower-case name of the class, suitable as a metric label.
func (c Class) String() string {
	switch c {
	case Delivered:
		return "delivered"
	case Retryable:
		return "retryable"
	case DestinationFault:
		return "destination_fault"
	case Permanent:
		return "permanent"
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// Reason is a typed, low-cardinality label for metrics and status records.
type Reason string

// The reasons Classify produces. The set is closed: metrics may label by it.
const (
	ReasonOK               Reason = "ok"                // 2xx
	ReasonRateLimited      Reason = "rate_limited"      // 429
	ReasonServerError      Reason = "server_error"      // 5xx
	ReasonTimeout          Reason = "timeout"           // the attempt (or the caller's deadline) timed out
	ReasonConnectionError  Reason = "connection_error"  // refused, reset, EOF, DNS, TLS
	ReasonCanceled         Reason = "canceled"          // the caller cancelled (shutdown); retry later
	ReasonRequestTimeout   Reason = "request_timeout"   // 408
	ReasonTooEarly         Reason = "too_early"         // 425
	ReasonUnauthorized     Reason = "unauthorized"      // 401
	ReasonForbidden        Reason = "forbidden"         // 403
	ReasonClientError      Reason = "client_error"      // other 4xx
	ReasonRedirect         Reason = "redirect"          // 3xx (never followed)
	ReasonPayloadTooLarge  Reason = "payload_too_large" // 413 from Qualtrics
	ReasonSSRFBlocked      Reason = "ssrf_blocked"      // refused by HostPolicy, at request or dial time
	ReasonTLSError         Reason = "tls_error"         // the destination's certificate does not verify
	ReasonUnexpectedStatus Reason = "unexpected_status" // a status outside 200-599
)

// Outcome is the classified result of one delivery attempt.
type Outcome struct {
	Class      Class
	Reason     Reason
	Status     int           // 0 when no HTTP response
	RetryAfter time.Duration // parsed from Retry-After (seconds or HTTP-date) on 429/503, 0 if absent; capped at MaxRetryAfter
	Excerpt    string        // at most ExcerptBytes of the response body (after a 3xx's Location), or the error text; safe text (see excerpt), never contains the token
}

// Retryable reports whether the attempt may be repeated later.
func (o Outcome) Retryable() bool { return o.Class == Retryable }

const (
	// ExcerptBytes is the most of a response body (or error text) kept in Outcome.Excerpt.
	ExcerptBytes = 512
	// MaxRetryAfter caps a destination's Retry-After.
	MaxRetryAfter = time.Hour
)

// errAttemptTimeout is the cause set on the per-attempt context by Client.Send.
var errAttemptTimeout = errors.New("qualtrics: attempt timed out")

// Classify is the one function that decides delivered / retry / fault / give up for every
// response or error. When err is non-nil the attempt got no usable response and status,
// header and body are ignored. now anchors an HTTP-date Retry-After.
func Classify(status int, header http.Header, body []byte, err error, now time.Time) Outcome {
	if err != nil {
		return classifyErr(err)
	}
	o := Outcome{Status: status, Excerpt: excerpt(body)}
	switch {
	case status >= 200 && status <= 299:
		o.Class, o.Reason = Delivered, ReasonOK
	case status >= 300 && status <= 399:
		o.Class, o.Reason = Permanent, ReasonRedirect
		o.Excerpt = excerpt(append([]byte("Location: "+shownLocation(header.Get("Location"))+"\n"), body...))
	case status == http.StatusRequestTimeout:
		o.Class, o.Reason = Retryable, ReasonRequestTimeout
	case status == http.StatusTooEarly:
		o.Class, o.Reason = Retryable, ReasonTooEarly
	case status == http.StatusTooManyRequests:
		o.Class, o.Reason = Retryable, ReasonRateLimited
		o.RetryAfter = parseRetryAfter(header.Get("Retry-After"), now)
	case status == http.StatusUnauthorized:
		o.Class, o.Reason = DestinationFault, ReasonUnauthorized
	case status == http.StatusForbidden:
		o.Class, o.Reason = DestinationFault, ReasonForbidden
	case status == http.StatusRequestEntityTooLarge:
		o.Class, o.Reason = Permanent, ReasonPayloadTooLarge
	case status >= 400 && status <= 499:
		o.Class, o.Reason = Permanent, ReasonClientError
	case status >= 500 && status <= 599:
		o.Class, o.Reason = Retryable, ReasonServerError
		if status == http.StatusServiceUnavailable {
			o.RetryAfter = parseRetryAfter(header.Get("Retry-After"), now)
		}
	default:
		// 1xx surfacing as final, or nonsense: nothing a retry would fix.
		o.Class, o.Reason = Permanent, ReasonUnexpectedStatus
	}
	return o
}

func classifyErr(err error) Outcome {
	o := Outcome{Class: Retryable, Excerpt: excerpt([]byte(err.Error()))}
	var (
		timeout interface{ Timeout() bool }
		certErr *tls.CertificateVerificationError
	)
	switch {
	case errors.Is(err, ErrURLNotAllowed):
		o.Class, o.Reason = DestinationFault, ReasonSSRFBlocked
	case errors.As(err, &certErr):
		o.Class, o.Reason = DestinationFault, ReasonTLSError
	case errors.Is(err, errAttemptTimeout), errors.Is(err, context.DeadlineExceeded):
		o.Reason = ReasonTimeout
	case errors.Is(err, context.Canceled):
		o.Reason = ReasonCanceled
	case errors.As(err, &timeout) && timeout.Timeout():
		o.Reason = ReasonTimeout
	default:
		o.Reason = ReasonConnectionError
	}
	return o
}

// parseRetryAfter reads delay-seconds or an HTTP-date (relative to now); 0 when absent,
// invalid or in the past; capped at MaxRetryAfter.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if secs, err := strconv.ParseInt(v, 10, 64); errors.Is(err, strconv.ErrRange) && secs > 0 {
		return MaxRetryAfter
	} else if err == nil {
		if secs <= 0 {
			return 0
		}
		if secs >= int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter
		}
		d = time.Duration(secs) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	return min(max(d, 0), MaxRetryAfter)
}

// excerpt returns at most ExcerptBytes of b as text that is safe to store and to show: valid
// UTF-8, cut on a rune boundary, with every invalid byte sequence and every control or
// bidi-formatting character except newline and tab replaced by U+FFFD (a run of them by one).
// A destination's body is hostile input: PostgreSQL refuses a NUL in text (and would fail the
// status write of every delivery committed with it), and terminal escapes or bidi overrides
// change what an operator's terminal or browser shows.
func excerpt(b []byte) string { return safeText(b, ExcerptBytes) }

func safeText(b []byte, limit int) string {
	var sb strings.Builder
	sb.Grow(min(len(b), limit))
	replaced := false // the last rune written is a replacement
	for len(b) > 0 && sb.Len() < limit {
		r, size := utf8.DecodeRune(b)
		b = b[size:]
		if (r == utf8.RuneError && size <= 1) || unsafeRune(r) {
			if replaced {
				continue
			}
			r = utf8.RuneError
		}
		if sb.Len()+utf8.RuneLen(r) > limit {
			break
		}
		replaced = r == utf8.RuneError
		sb.WriteRune(r)
	}
	return sb.String()
}

// unsafeRune reports whether r may not appear in an excerpt.
func unsafeRune(r rune) bool {
	if r == '\n' || r == '\t' {
		return false
	}
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r)
}

// withNote appends note on a line of its own to an excerpt, cutting the excerpt so that both fit
// in ExcerptBytes.
func withNote(ex, note string) string {
	if ex == "" {
		return safeText([]byte(note), ExcerptBytes)
	}
	return safeText([]byte(ex), ExcerptBytes-len(note)-1) + "\n" + note
}

// maxLocationBytes bounds the Location shown for a redirect, leaving room for the body.
const maxLocationBytes = 256

// shownLocation renders a redirect's Location for the excerpt: where it points (scheme, host,
// path) without userinfo, query or fragment, which may carry credentials or identifiers; cut at
// the first control character or space, and at maxLocationBytes.
func shownLocation(loc string) string {
	if loc == "" {
		return "(none)"
	}
	if i := strings.IndexFunc(loc, func(r rune) bool { return r <= ' ' || r == 0x7f }); i >= 0 {
		loc = loc[:i]
	}
	u, err := url.Parse(loc)
	if err != nil {
		return "(unparsable)"
	}
	u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
	return safeText([]byte(u.String()), maxLocationBytes)
}
