package delivery

import "time"

// Parked is a delivery waiting outside RAM.
type Parked struct {
	DeliveryID     string
	DestinationID  string
	ProfileKey     string
	Seq            int64 // order within (destination, profile)
	DueAt          time.Time
	Attempts       int
	FirstAttemptAt *time.Time
	Job            []byte
}
