// Package notify owns notification channels (webhook, Slack, Teams) and the delivery of
// notifications to them: each notification is recorded once under a stable ID (a unique
// constraint in the store), fanned out to the channels subscribed to its type, signed per the
// Standard Webhooks spec for webhook channels, and sent by a small sender with retries,
// backoff and dead letters recorded in the store.
//
// The sender is separate from internal/dispatch, qgate's delivery engine for profile updates,
// only because that engine is being rewritten; unifying them is the next step (see
// docs/survey-watch.md).
package notify
