package dispatch

import (
	"testing"

	"github.com/qgate/qgate/internal/queue"
)

func rec(p int, off int64) queue.Record { return queue.Record{Topic: "t", Partition: p, Offset: off} }

func TestTrackerCommitsOnlyContiguousFinishedOffsets(t *testing.T) {
	tr := newTracker()
	for off := int64(10); off < 15; off++ {
		tr.add(rec(0, off))
	}
	tr.add(rec(1, 7))

	tr.finish(rec(0, 11))
	tr.finish(rec(0, 12))
	if got := tr.committable(); len(got) != 0 {
		t.Fatalf("committed past an unfinished offset: %+v", got)
	}
	tr.finish(rec(0, 10))
	got := tr.committable()
	if len(got) != 1 || got[0].Partition != 0 || got[0].Offset != 12 {
		t.Fatalf("after 10,11,12 finished: %+v", got)
	}
	if got := tr.committable(); len(got) != 0 {
		t.Fatalf("committed twice: %+v", got)
	}
	tr.retry([]queue.Record{rec(0, 12)})
	if got := tr.committable(); len(got) != 1 || got[0].Offset != 12 {
		t.Fatalf("failed commit not retried: %+v", got)
	}
	tr.finish(rec(1, 7))
	tr.finish(rec(0, 14))
	got = tr.committable()
	if len(got) != 1 || got[0].Partition != 1 || got[0].Offset != 7 {
		t.Fatalf("partition 1: %+v", got)
	}
	if n := tr.outstanding(); n != 2 {
		t.Fatalf("outstanding %d, want 2 (13 and 14)", n)
	}
}
