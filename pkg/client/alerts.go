package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Alert is one alert fired for an alert subscription (GET /v1/alerts), with its delivery to
// the subscription's webhook.
type Alert struct {
	ID              string `json:"id"` // alt_…, the webhook-id of every attempt
	SubscriptionID  string `json:"subscriptionId"`
	Event           string `json:"event"` // circuit.opened, circuit.closed, destination.auth, deadletters.threshold, failure.rate, backlog.age, …
	DestinationID   string `json:"destinationId"`
	DestinationName string `json:"destinationName"`
	// Message is a sentence an operator can act on.
	Message string    `json:"message"`
	FiredAt time.Time `json:"firedAt"`
	// Status of the webhook delivery: pending, retrying, delivered or dead_lettered.
	Status         string     `json:"status"`
	Attempts       int        `json:"attempts"`
	LastStatusCode int        `json:"lastStatusCode"`
	LastError      string     `json:"lastError,omitempty"`
	NextAttemptAt  *time.Time `json:"nextAttemptAt"`
	DeliveredAt    *time.Time `json:"deliveredAt"`
}

// AlertQuery selects alerts; zero fields do not filter.
type AlertQuery struct {
	DestinationID  string
	SubscriptionID string
	Event          string
	Status         string // of the webhook delivery
	Limit          int    // 1–500; 0: the server's default (50)
}

// ListAlerts returns the alerts fired, newest first (GET /v1/alerts; a support or operator
// key). A qgate that predates the endpoint answers 404 with code route_not_found.
func (c *Client) ListAlerts(ctx context.Context, q AlertQuery) ([]Alert, error) {
	v := url.Values{}
	for k, s := range map[string]string{"destinationId": q.DestinationID, "subscriptionId": q.SubscriptionID, "event": q.Event, "status": q.Status} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out struct {
		Alerts []Alert `json:"alerts"`
	}
	if _, err := c.call(ctx, http.MethodGet, "/v1/alerts", v, nil, &out); err != nil {
		return nil, err
	}
	return out.Alerts, nil
}
