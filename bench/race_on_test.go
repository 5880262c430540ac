//go:build race

package bench

// raceEnabled: the race detector allocates on its own, so allocation bounds differ.
const raceEnabled = true
