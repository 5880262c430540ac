package client

import (
	"net/http"
	"testing"
	"time"
)

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"":     0,
		"7":    7 * time.Second,
		" 0 ":  0,
		"-3":   0,
		"soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
	} {
		if got := retryAfter(in, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestJoinPath(t *testing.T) {
	for _, c := range [][3]string{
		{"profiles[1]", "", "profiles[1]"},
		{"profiles[1]", "identityMap", "profiles[1].identityMap"},
		{"profiles[1]", "[0]", "profiles[1][0]"},
	} {
		if got := joinPath(c[0], c[1]); got != c[2] {
			t.Errorf("joinPath(%q, %q) = %q, want %q", c[0], c[1], got, c[2])
		}
	}
}

func TestAPIErrorMessageIsBounded(t *testing.T) {
	e := &APIError{Status: 422, Problems: []Problem{{Code: "a"}, {Code: "b"}, {Code: "c"}, {Code: "d"}, {Code: "e"}}}
	if got, want := e.Error(), "qgate: 422 Unprocessable Entity: a; b; c; and 2 more"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}
