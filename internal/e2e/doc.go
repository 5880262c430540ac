// Package e2e holds process-level tests of qgate: they build the qgate binary, run `qgate
// broker` and one or more `qgate serve` processes on loopback, drive them over HTTP against an
// in-process Qualtrics simulator, and kill, stop and restart those processes to check the
// reliability rules of the brief (§9). The package has no code of its own; see README.md.
package e2e
