package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// failedChecks keeps, per test (t.Name()), the messages of the checks that failed, so that a
// failing test repeats them as its last output line before "--- FAIL": the process logs it
// prints at its end (startProc's cleanup) would otherwise push the messages out of a CI excerpt,
// which shows only the last lines before the verdict.
var failedChecks sync.Map // test name → *checkLog

type checkLog struct {
	mu   sync.Mutex
	msgs []string
}

func recordFailure(t testing.TB, msg string) {
	v, _ := failedChecks.LoadOrStore(t.Name(), &checkLog{})
	l := v.(*checkLog)
	l.mu.Lock()
	l.msgs = append(l.msgs, msg)
	l.mu.Unlock()
}

// errorf is t.Errorf, recorded for the summary.
func errorf(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	recordFailure(t, msg)
	t.Error(msg)
}

// fatalf is t.Fatalf, recorded for the summary.
func fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	recordFailure(t, msg)
	t.Fatal(msg)
}

// fatal is t.Fatal, recorded for the summary.
func fatal(t testing.TB, args ...any) {
	t.Helper()
	msg := strings.TrimSuffix(fmt.Sprintln(args...), "\n")
	recordFailure(t, msg)
	t.Fatal(msg)
}

// errorln is t.Error, recorded for the summary.
func errorln(t testing.TB, args ...any) {
	t.Helper()
	msg := strings.TrimSuffix(fmt.Sprintln(args...), "\n")
	recordFailure(t, msg)
	t.Error(msg)
}

// summarizeFailures registers the cleanup that repeats t's failed checks once everything else
// has been printed; call it before anything registers a cleanup that prints (newEnv does).
// Each message is cut to its first line and 300 bytes, at most 8 of them.
func summarizeFailures(t testing.TB) {
	t.Cleanup(func() {
		v, ok := failedChecks.LoadAndDelete(t.Name())
		if !ok || !t.Failed() {
			return
		}
		l := v.(*checkLog)
		l.mu.Lock()
		defer l.mu.Unlock()
		var b strings.Builder
		fmt.Fprintf(&b, "FAILED CHECKS of %s (%d, repeated after the logs above):", t.Name(), len(l.msgs))
		for i, m := range l.msgs {
			if i == 8 {
				fmt.Fprintf(&b, "\n  … and %d more", len(l.msgs)-i)
				break
			}
			m, _, _ = strings.Cut(m, "\n")
			if len(m) > 300 {
				m = m[:300] + "…"
			}
			b.WriteString("\n  " + m)
		}
		t.Log(b.String())
	})
}
