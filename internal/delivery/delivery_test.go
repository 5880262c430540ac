package delivery

import (
	"fmt"
	"regexp"
	"testing"
	"time"
)

var idShape = regexp.MustCompile(`^dlv_[0-9a-f]{32}$`)

func TestIDIsStableAndShaped(t *testing.T) {
	for _, upd := range []string{"0190f3c2-7a4b-7c3d-8e9f-0123456789ab", "upd-1", "", "0190F3C2-7A4B-7C3D-8E9F-0123456789AB"} {
		a, b := ID(upd, "dst_1"), ID(upd, "dst_1")
		if a != b || !idShape.MatchString(a) {
			t.Errorf("ID(%q) = %q then %q", upd, a, b)
		}
		if ID(upd, "dst_2") == a {
			t.Errorf("ID(%q) same for two destinations", upd)
		}
	}
	if got := ID("0190f3c2-7a4b-7c3d-8e9f-0123456789ab", "d")[4:16]; got != "0190f3c27a4b" {
		t.Errorf("UUIDv7 timestamp prefix = %q", got)
	}
	// Not a v7 (version digit 4): no timestamp prefix.
	if got := ID("0190f3c2-7a4b-4c3d-8e9f-0123456789ab", "d")[4:16]; got == "0190f3c27a4b" {
		t.Errorf("UUIDv4 got a timestamp prefix")
	}
}

// Delivery IDs of later updates sort after earlier ones, whatever the destination (the reason
// for the prefix: indexes keyed by delivery ID grow at their right edge).
func TestIDsOfLaterUpdatesSortLater(t *testing.T) {
	v7 := func(ms int64) string { return fmt.Sprintf("%08x-%04x-7abc-8def-0123456789ab", ms>>16, ms&0xffff) }
	base := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	prev := ""
	for i := range int64(1000) {
		id := ID(v7(base+i), fmt.Sprintf("dst_%d", 999-i))
		if id <= prev {
			t.Fatalf("update at +%d ms: %s sorts before %s", i, id, prev)
		}
		prev = id
	}
}
