// Package survey owns survey watch: connections to Qualtrics accounts (API v3, X-API-TOKEN),
// their sync into the store (users, surveys, distributions with stats, per-recipient history,
// personal links, directories and contacts), the notification rules evaluated after each sync
// (survey.request, survey.expiring, survey.stats), and the read API for people and brand
// admins. It never writes to Qualtrics: every change there goes through a deep link.
//
// The store implements the interfaces this package declares (Store); notifications leave
// through a Publisher (internal/notify implements it).
package survey
