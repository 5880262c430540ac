package client

import (
	"context"
	"net/http"
	"strconv"
	"time"
)

// Alert is something an operator should know about a destination, such as its circuit
// opening (kind circuit_opened) or closing (circuit_closed).
type Alert struct {
	ID            string    `json:"id"`
	DestinationID string    `json:"destinationId"`
	Kind          string    `json:"kind"`
	Message       string    `json:"message"`
	At            time.Time `json:"at"`
}

// AlertQuery selects alerts; zero fields do not filter.
type AlertQuery struct {
	DestinationID string
	Since         time.Time
	Limit         int
}

// ListAlerts returns recent alerts, newest first (GET /v1/alerts). A qgate that predates the
// endpoint answers 404 with code route_not_found.
func (c *Client) ListAlerts(ctx context.Context, q AlertQuery) ([]Alert, error) {
	v := deliveryValues(q.DestinationID, "", "", q.Since, time.Time{}, 0, "")
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
