package delivery

// Stats are a destination's figures over a window (BRIEF §6).
type Stats struct {
	// Received counts deliveries routed to the destination in the window.
	Received int64 `json:"received"`
	// ByStatus counts those deliveries by their current status (every status present, 0 if none).
	ByStatus map[Status]int64 `json:"byStatus"`
	// ExcludedByReason and DeadLetteredByReason break the two failure statuses down.
	ExcludedByReason     map[string]int64 `json:"excludedByReason"`
	DeadLetteredByReason map[string]int64 `json:"deadLetteredByReason"`
	// AttemptLatency is the POST round trip of successful attempts; EndToEnd is ingest
	// acknowledgement to delivery. Both over the latest LatencySample deliveries of the window.
	AttemptLatency Percentiles `json:"attemptLatencyMs"`
	EndToEnd       Percentiles `json:"endToEndLatencyMs"`
	// Backlog counts the destination's deliveries not yet finished (pending or retrying, any
	// age), and Parked those of them waiting in the store rather than in a node's memory.
	Backlog int64 `json:"backlog"`
	Parked  int64 `json:"parked"`
}

// Percentiles of a latency sample in milliseconds; nil when the sample is empty.
type Percentiles struct {
	Samples int      `json:"samples"`
	P50     *float64 `json:"p50"`
	P99     *float64 `json:"p99"`
}
