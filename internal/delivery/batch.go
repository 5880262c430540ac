package delivery

// Batch is a unit of status writes that the status store applies in one transaction: the
// router's updates and pending or excluded deliveries, the dispatcher's outcomes, parkings
// and alerts.
type Batch struct {
	Updates []Update
	Events  []Event
	Park    []Parked // parked (or re-parked) deliveries
	Unpark  []string // delivery IDs that left the park
	Alerts  []Alert
}

// Size counts the rows of the batch.
func (b Batch) Size() int {
	return len(b.Updates) + len(b.Events) + len(b.Park) + len(b.Unpark) + len(b.Alerts)
}
