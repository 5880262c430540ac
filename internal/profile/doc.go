// Package profile owns the profile-update model and its validation: it splits an
// ingest request body into profile objects (SplitBody), validates each one against
// the ingest rules of BRIEF §3 in a single pass over its bytes (Parse), and derives
// the stable, non-PII Kafka key of a validated profile (Profile.Key).
//
// The package imports no other qgate package. The rules and every error code are
// described in docs/profile-validation.md; schemas/profile-update.schema.json
// describes the same rules as a JSON Schema.
package profile
