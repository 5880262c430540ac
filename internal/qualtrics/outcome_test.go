package qualtrics

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

func TestClassify(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	h := func(kv ...string) http.Header {
		hd := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			hd.Set(kv[i], kv[i+1])
		}
		return hd
	}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	reset := &net.OpError{Op: "read", Net: "tcp", Err: os.NewSyscallError("read", syscall.ECONNRESET)}
	netTimeout := &net.OpError{Op: "dial", Net: "tcp", Err: timeoutErr{}}

	tests := []struct {
		name       string
		status     int
		header     http.Header
		err        error
		class      Class
		reason     Reason
		retryAfter time.Duration
	}{
		{"200", 200, nil, nil, Delivered, ReasonOK, 0},
		{"201", 201, nil, nil, Delivered, ReasonOK, 0},
		{"204", 204, nil, nil, Delivered, ReasonOK, 0},
		{"301", 301, h("Location", "https://x.qualtrics.com/"), nil, Permanent, ReasonRedirect, 0},
		{"302", 302, nil, nil, Permanent, ReasonRedirect, 0},
		{"400", 400, nil, nil, Permanent, ReasonClientError, 0},
		{"401", 401, nil, nil, DestinationFault, ReasonUnauthorized, 0},
		{"403", 403, nil, nil, DestinationFault, ReasonForbidden, 0},
		{"404", 404, nil, nil, Permanent, ReasonClientError, 0},
		{"408", 408, nil, nil, Retryable, ReasonRequestTimeout, 0},
		{"409", 409, nil, nil, Permanent, ReasonClientError, 0},
		{"413", 413, nil, nil, Permanent, ReasonPayloadTooLarge, 0},
		{"422", 422, nil, nil, Permanent, ReasonClientError, 0},
		{"425", 425, nil, nil, Retryable, ReasonTooEarly, 0},
		{"429 no Retry-After", 429, nil, nil, Retryable, ReasonRateLimited, 0},
		{"429 Retry-After seconds", 429, h("Retry-After", "7"), nil, Retryable, ReasonRateLimited, 7 * time.Second},
		{"429 Retry-After date", 429, h("Retry-After", now.Add(90*time.Second).Format(http.TimeFormat)), nil, Retryable, ReasonRateLimited, 90 * time.Second},
		{"429 Retry-After past date", 429, h("Retry-After", now.Add(-time.Minute).Format(http.TimeFormat)), nil, Retryable, ReasonRateLimited, 0},
		{"429 Retry-After capped", 429, h("Retry-After", "86400"), nil, Retryable, ReasonRateLimited, time.Hour},
		{"429 Retry-After huge", 429, h("Retry-After", "99999999999999999999"), nil, Retryable, ReasonRateLimited, time.Hour},
		{"429 Retry-After garbage", 429, h("Retry-After", "soon"), nil, Retryable, ReasonRateLimited, 0},
		{"429 Retry-After negative", 429, h("Retry-After", "-5"), nil, Retryable, ReasonRateLimited, 0},
		{"500", 500, nil, nil, Retryable, ReasonServerError, 0},
		{"502", 502, nil, nil, Retryable, ReasonServerError, 0},
		{"503 Retry-After", 503, h("Retry-After", "30"), nil, Retryable, ReasonServerError, 30 * time.Second},
		{"504", 504, nil, nil, Retryable, ReasonServerError, 0},
		{"500 ignores Retry-After", 500, h("Retry-After", "30"), nil, Retryable, ReasonServerError, 0},
		{"status 0 no error", 0, nil, nil, Permanent, ReasonUnexpectedStatus, 0},
		{"status 600", 600, nil, nil, Permanent, ReasonUnexpectedStatus, 0},
		{"attempt timeout", 0, nil, fmt.Errorf("%w: %w", errAttemptTimeout, context.DeadlineExceeded), Retryable, ReasonTimeout, 0},
		{"deadline exceeded", 0, nil, context.DeadlineExceeded, Retryable, ReasonTimeout, 0},
		{"net timeout", 0, nil, netTimeout, Retryable, ReasonTimeout, 0},
		{"connection refused", 0, nil, refused, Retryable, ReasonConnectionError, 0},
		{"connection reset", 0, nil, reset, Retryable, ReasonConnectionError, 0},
		{"EOF", 0, nil, io.EOF, Retryable, ReasonConnectionError, 0},
		{"unexpected EOF", 0, nil, io.ErrUnexpectedEOF, Retryable, ReasonConnectionError, 0},
		{"canceled", 0, nil, context.Canceled, Retryable, ReasonCanceled, 0},
		{"ssrf", 0, nil, fmt.Errorf("dial: %w", ErrURLNotAllowed), DestinationFault, ReasonSSRFBlocked, 0},
		{"bad certificate", 0, nil, fmt.Errorf("tls: %w", &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}), DestinationFault, ReasonTLSError, 0},
		{"error wins over status", 200, nil, refused, Retryable, ReasonConnectionError, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Classify(tt.status, tt.header, []byte("body"), tt.err, now)
			if got.Class != tt.class || got.Reason != tt.reason || got.RetryAfter != tt.retryAfter {
				t.Fatalf("Classify(%d, %v) = %v/%s/%v, want %v/%s/%v", tt.status, tt.err,
					got.Class, got.Reason, got.RetryAfter, tt.class, tt.reason, tt.retryAfter)
			}
			if tt.err != nil {
				if got.Status != 0 || got.Excerpt != tt.err.Error() {
					t.Errorf("error outcome: Status=%d Excerpt=%q, want 0 and %q", got.Status, got.Excerpt, tt.err.Error())
				}
			} else if want := wantExcerpt(tt.status, tt.header); got.Status != tt.status || got.Excerpt != want {
				t.Errorf("Status=%d Excerpt=%q, want %d and %q", got.Status, got.Excerpt, tt.status, want)
			}
		})
	}
}

type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

// wantExcerpt is Classify's excerpt of the body "body": a redirect's names its Location first.
func wantExcerpt(status int, h http.Header) string {
	if status >= 300 && status <= 399 {
		loc := h.Get("Location")
		if loc == "" {
			loc = "(none)"
		}
		return "Location: " + loc + "\nbody"
	}
	return "body"
}

func TestClassString(t *testing.T) {
	for c, want := range map[Class]string{Delivered: "delivered", Retryable: "retryable",
		DestinationFault: "destination_fault", Permanent: "permanent", Class(9): "class(9)"} {
		if got := c.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(c), got, want)
		}
	}
}

func TestExcerpt(t *testing.T) {
	euro := strings.Repeat("€", 200) // 3 bytes each: 600 bytes, the cut at 512 splits a rune
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, ""},
		{"short", []byte(`{"ok":true}`), `{"ok":true}`},
		{"exact", []byte(strings.Repeat("a", 512)), strings.Repeat("a", 512)},
		{"long", []byte(strings.Repeat("a", 2000)), strings.Repeat("a", 512)},
		{"rune split by cut", []byte(euro), strings.Repeat("€", 170)},
		{"invalid bytes", []byte("a\xffb"), "a\uFFFDb"},
		{"invalid bytes growing past the cap", []byte(strings.Repeat("\xff", 600)), strings.Repeat("\uFFFD", 1)},
		{"NUL", []byte("a\x00b\x00\x00c"), "a\uFFFDb\uFFFDc"},
		{"controls but newline and tab", []byte("a\r\n\tb\x1b[31mc\x7f\u0085d"), "a\uFFFD\n\tb\uFFFD[31mc\uFFFDd"},
		{"bidi override", []byte("x\u202Eyz\u2066"), "x\uFFFDyz\uFFFD"},
		{"replacement character kept", []byte("\uFFFD\uFFFD"), "\uFFFD\uFFFD"},
		{"replacements cut on a rune boundary", []byte(strings.Repeat("a\x00", 400)), strings.Repeat("a\uFFFD", 128)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := excerpt(tt.in)
			if got != tt.want {
				t.Errorf("excerpt = %q (%d bytes), want %q", got, len(got), tt.want)
			}
			if len(got) > ExcerptBytes || !utf8.ValidString(got) {
				t.Errorf("excerpt of %d bytes, valid=%v", len(got), utf8.ValidString(got))
			}
		})
	}
}

func FuzzExcerpt(f *testing.F) {
	f.Add([]byte("hello"))
	f.Add([]byte(strings.Repeat("é\xff", 400)))
	f.Add([]byte("a\x00\x1b[2J\u202E"))
	f.Fuzz(func(t *testing.T, b []byte) {
		got := excerpt(b)
		if len(got) > ExcerptBytes || !utf8.ValidString(got) {
			t.Fatalf("excerpt(%q) = %q", b, got)
		}
		for _, r := range got {
			if unsafeRune(r) {
				t.Fatalf("excerpt(%q) = %q keeps %U", b, got, r)
			}
		}
	})
}

func TestClassifyErrorsIsThroughWrapping(t *testing.T) {
	err := &redactedError{err: fmt.Errorf("x: %w", context.Canceled), msg: "x"}
	if o := Classify(0, nil, nil, err, time.Now()); o.Reason != ReasonCanceled || o.Excerpt != "x" {
		t.Fatalf("got %+v", o)
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatal("redactedError must unwrap")
	}
}
