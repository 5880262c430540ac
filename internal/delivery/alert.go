package delivery

import "time"

// Alert is a record of a destination-level event an operator should know about (circuit opened
// or closed).
type Alert struct {
	ID            string    `json:"id"`
	DestinationID string    `json:"destinationId"`
	Kind          string    `json:"kind"`
	Message       string    `json:"message"`
	At            time.Time `json:"at"`
}
