//go:build unix

package main

import (
	"maps"
	"slices"
	"testing"
)

func TestParseFigures(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"all", peerFigures},
		{"ingest", []string{"ingest"}},
		{"ingest, idle", []string{"idle", "ingest"}},
	} {
		got, err := parseFigures(tc.in)
		if err != nil {
			t.Fatalf("%q: %v", tc.in, err)
		}
		if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, slices.Sorted(slices.Values(tc.want))) {
			t.Errorf("%q: %v, want %v", tc.in, keys, tc.want)
		}
	}
	if _, err := parseFigures("ingest,speed"); err == nil {
		t.Error("an unknown figure was accepted")
	}
}
