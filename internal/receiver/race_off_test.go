//go:build !race

package receiver_test

// raceAllocs is what the race detector adds to an allocation bound: nothing without it.
const raceAllocs = 0
