// Package notify owns notification channels (webhook, Slack, Teams) and what reaches them:
// each notification is recorded once under a stable ID (a unique constraint in the store),
// rendered for each channel subscribed to its type and handed, in the same transaction, to
// qgate's delivery engine (internal/dispatch) as one delivery per channel. A channel is a lane
// of that engine — claim, rate limit, circuit breaker, retries, park, dead letters and replay —
// and Lanes makes each attempt: signed per the Standard Webhooks spec at send time with the
// channel's sealed secret. Post, the one signed POST, also serves alert subscriptions.
package notify
