// Package fault holds the kinds of failure every domain reports (not found, conflict, invalid
// input, …) and the Problem shape that names a field path, a code and a human message. Domains
// wrap these kinds; the api package maps them to HTTP statuses in one place. It imports nothing
// of qgate.
package fault

import (
	"errors"
	"strings"
	"time"
)

// The kinds. Test with errors.Is.
var (
	Malformed        = errors.New("malformed request")      // 400
	Unauthorized     = errors.New("unauthorized")           // 401
	Forbidden        = errors.New("forbidden")              // 403
	NotFound         = errors.New("not found")              // 404
	Conflict         = errors.New("conflict")               // 409
	TooLarge         = errors.New("request too large")      // 413
	UnsupportedMedia = errors.New("unsupported media type") // 415
	Invalid          = errors.New("invalid")                // 422
	Unavailable      = errors.New("unavailable")            // 503
)

// Problem is one thing wrong with a request: where, a stable code, and a sentence for humans.
type Problem struct {
	Path    string `json:"path"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is a failure of some Kind with the problems that explain it.
type Error struct {
	Kind       error
	Problems   []Problem
	RetryAfter time.Duration // for Unavailable: when to try again
}

// New returns an Error of kind with one problem.
func New(kind error, path, code, message string) *Error {
	return &Error{Kind: kind, Problems: []Problem{{Path: path, Code: code, Message: message}}}
}

// Of returns an Error of kind with the given problems.
func Of(kind error, problems ...Problem) *Error { return &Error{Kind: kind, Problems: problems} }

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.Error())
	for i, p := range e.Problems {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		if p.Path != "" {
			b.WriteString(p.Path + ": ")
		}
		b.WriteString(p.Message)
	}
	return b.String()
}

// Unwrap lets errors.Is find the kind.
func (e *Error) Unwrap() error { return e.Kind }
