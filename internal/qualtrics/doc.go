// Package qualtrics owns qgate's side of the conversation with Qualtrics JSON-event workflows:
// the HTTP client that POSTs one payload per attempt (Client.Send), the single function that
// turns any response or transport error into a delivery outcome (Classify), and the SSRF guard
// (HostPolicy) applied when a destination URL is registered and again on every request and on
// every dial, against the resolved IP address.
//
// The package never retries, sleeps or drops anything itself: it reports what happened as an
// Outcome (Class + Reason + Retry-After), and the dispatcher decides what to do with it.
// The API token never appears in any string the package returns.
package qualtrics
