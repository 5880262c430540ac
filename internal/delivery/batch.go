package delivery

// Batch is a unit of status writes that the status store applies in one transaction: the
// router's updates and pending or excluded deliveries, the dispatcher's outcomes, parkings
// and alerts.
type Batch struct {
	Updates []Update
	Events  []Event
	// Routed are the pending deliveries the router queued. Applied, they are events like the
	// others (before Events). A status writer may instead hold them back for a moment and
	// write each one merged into its delivery's first outcome (store.StatusWriter): their
	// update's Queued list, written with it, tells support they are pending meanwhile, and
	// each job carries what its first outcome row needs.
	Routed []Event
	Park   []Parked // parked (or re-parked) deliveries
	Unpark []string // delivery IDs that left the park
	Alerts []Alert
}

// Size counts the rows of the batch.
func (b Batch) Size() int {
	return len(b.Updates) + len(b.Events) + len(b.Routed) + len(b.Park) + len(b.Unpark) + len(b.Alerts)
}
