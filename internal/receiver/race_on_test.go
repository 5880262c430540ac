//go:build race

package receiver_test

// raceAllocs is what the race detector adds to an allocation bound.
const raceAllocs = 4
