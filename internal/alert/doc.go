// Package alert owns alert subscriptions: an operator's webhook (Standard Webhooks signed,
// SSRF-guarded like every outgoing URL) and the destination events it wants — circuit opened
// or closed, destination auth failures (401/403), dead letters over a threshold, a failure rate
// over a window, a backlog older than a bound. An evaluator on every node turns the store's
// delivery figures into episodes, each fired once per subscription however many nodes look
// (a conditional write in the store), and a sender delivers the fired alerts with retries,
// backoff and dead letters. GET /v1/alerts lists them. See docs/alerts.md.
package alert
