package delivery

import "time"

// Series is a destination's figures over a window, bucket by bucket, for the support page's
// charts (GET /v1/destinations/{id}/series).
type Series struct {
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// StepSeconds is the width of each bucket.
	StepSeconds int      `json:"stepSeconds"`
	Buckets     []Bucket `json:"buckets"`
	// Circuit is the circuit's state over the window, from the circuit alerts nodes recorded.
	Circuit []CircuitSpan `json:"circuit"`
	// Alerts are the destination's alerts in the window, the most recent first (at most 100).
	Alerts []Alert `json:"alerts"`
	// Sampled is true when the window held more attempts or deliveries than one answer reads
	// (SeriesSample): the oldest buckets are then incomplete.
	Sampled bool `json:"sampled"`
}

// Bucket holds one step of a Series.
type Bucket struct {
	At time.Time `json:"at"`
	// Attempts counts the attempts that ended in the bucket by outcome class (delivered,
	// retryable, destination_fault, permanent).
	Attempts map[string]int64 `json:"attempts"`
	// Excluded counts the deliveries excluded in the bucket (they have no attempts).
	Excluded int64 `json:"excluded"`
	// DeadLettered counts the deliveries that became dead letters in the bucket.
	DeadLettered int64 `json:"deadLettered"`
	// LatencyMs are the percentiles of the attempts' POST latency in the bucket.
	LatencyMs Percentiles `json:"latencyMs"`
	// Backlog is the number of deliveries waiting (pending or retrying) at the bucket's end.
	Backlog int64 `json:"backlog"`
}

// CircuitSpan is a stretch of time in one circuit state.
type CircuitSpan struct {
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	State string    `json:"state"`
}

// StoredPayload is a delivery's shaped payload as far as the store keeps it.
type StoredPayload struct {
	DeliveryID string `json:"deliveryId"`
	// Source is where the payload was found: "dead_letter" (kept with the dead letter for
	// replay), "parked" (the delivery is waiting to be retried) or "none" (delivered, excluded
	// and in-flight deliveries do not keep their payload).
	Source  string `json:"source"`
	Payload []byte `json:"-"`
}
