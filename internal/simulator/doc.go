// Package simulator owns the Qualtrics stand-in used by qgate's tests, demos
// and benchmarks: JSON-event endpoints with Qualtrics' authentication, limits
// and envelopes, a per-workflow run history, a seeded API v3 subset
// (whoami, surveys, distributions) and fault controls (scripted statuses,
// latency, hanging connections, forced 401) usable from Go and over HTTP.
//
// It follows /shared/QUALTRICS.md. Where Qualtrics' behaviour is unconfirmed
// (error codes, the rate-limit algorithm, the event success body) the choice
// is made in one place so it is easy to change.
package simulator
