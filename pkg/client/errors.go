package client

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// APIError is qgate's answer outside 2xx. Read it with errors.As:
//
//	var apiErr *client.APIError
//	if errors.As(err, &apiErr) && apiErr.HasCode("name_taken") { … }
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Method and Path name the request (the path without the query, never the key).
	Method, Path string
	// Problems are the body's problems, each with a JSON path, a stable code and a message.
	// On an ingest 422 or 503 that carries verdicts (see Ingest) they are the verdicts'
	// problems, with each path rooted at the request body: "profiles[1].identityMap" for a
	// batch, "identityMap" for a single profile. Empty when the body was not qgate's (a proxy's
	// HTML page, say).
	Problems []Problem
	// RetryAfter is the Retry-After header as a duration (always set on a 503 from qgate);
	// 0 when absent.
	RetryAfter time.Duration
	// Ingest holds the per-profile verdicts when an ingest answer carried them: a 422 (no
	// profile accepted) or a 503 (Kafka did not acknowledge: profiles with status
	// "unavailable" are safe to send again). Nil otherwise.
	Ingest *IngestResponse
}

// Error describes the failure: the request, the status and the first problems. It never
// contains the API key.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("qgate: ")
	if e.Method != "" {
		b.WriteString(e.Method + " " + e.Path + ": ")
	}
	fmt.Fprintf(&b, "%d %s", e.Status, http.StatusText(e.Status))
	if e.Ingest != nil {
		fmt.Fprintf(&b, " (%d of %d profiles accepted)", e.Ingest.Accepted, len(e.Ingest.Results))
	}
	const shown = 3
	for i, p := range e.Problems {
		if i == shown {
			fmt.Fprintf(&b, "; and %d more", len(e.Problems)-shown)
			break
		}
		sep := "; "
		if i == 0 {
			sep = ": "
		}
		b.WriteString(sep)
		if p.Path != "" {
			b.WriteString(p.Path + ": ")
		}
		b.WriteString(p.Code)
		if p.Message != "" {
			b.WriteString(" (" + p.Message + ")")
		}
	}
	if e.RetryAfter > 0 {
		fmt.Fprintf(&b, "; retry after %s", e.RetryAfter)
	}
	return b.String()
}

// HasCode reports whether any problem has the given code.
func (e *APIError) HasCode(code string) bool {
	return e.Problem(code) != nil
}

// Problem returns the first problem with the given code, or nil.
func (e *APIError) Problem(code string) *Problem {
	for i := range e.Problems {
		if e.Problems[i].Code == code {
			return &e.Problems[i]
		}
	}
	return nil
}

// StatusOf returns the HTTP status of err if it is (or wraps) an *APIError, and 0 otherwise.
func StatusOf(err error) int {
	var e *APIError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// IsNotFound reports whether err is a 404: no such destination, key, update (or not routed
// yet) or delivery.
func IsNotFound(err error) bool { return StatusOf(err) == http.StatusNotFound }

// IsUnauthorized reports whether err is a 401: no key, or an unknown or revoked one.
func IsUnauthorized(err error) bool { return StatusOf(err) == http.StatusUnauthorized }

// IsForbidden reports whether err is a 403: the key's role may not do this.
func IsForbidden(err error) bool { return StatusOf(err) == http.StatusForbidden }

// IsConflict reports whether err is a 409 (name_taken or version_conflict).
func IsConflict(err error) bool { return StatusOf(err) == http.StatusConflict }

// IsInvalid reports whether err is a 422: well-formed but invalid; the problems name every
// field at fault.
func IsInvalid(err error) bool { return StatusOf(err) == http.StatusUnprocessableEntity }

// IsUnavailable reports whether err is a 503: a dependency is unavailable or the node is
// shutting down; retry after the error's RetryAfter.
func IsUnavailable(err error) bool { return StatusOf(err) == http.StatusServiceUnavailable }
