package store

import (
	"context"
	"sync"
	"time"
)

// SQLite checkpoints its write-ahead log inside the commit that takes the log past
// wal_autocheckpoint pages: that commit copies the log's pages back into the database file and
// syncs both, while every other write waits for it. qgate's status writer is that commit most
// of the time, so on SQLite a checkpointer goroutine does it instead, on a connection of its own,
// every checkpointEvery while there were commits (PRAGMA wal_checkpoint(PASSIVE): it runs
// beside writers and readers, and never waits for them). wal_autocheckpoint stays, far higher
// (autoCheckpointPages), as the bound on the log should the checkpointer fall behind.
const (
	checkpointEvery     = time.Second
	autoCheckpointPages = 25000 // 100 MB of 4 KiB pages
)

const checkpointQuery = `PRAGMA wal_checkpoint(PASSIVE)`

// checkpointer runs background checkpoints of one SQLite store until stop is closed.
type checkpointer struct {
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

func (s *DB) startCheckpoints() {
	c := &checkpointer{stop: make(chan struct{}), done: make(chan struct{})}
	s.ckpt = c
	go func() {
		defer close(c.done)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		var seen int64
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
			}
			if n := s.writes.Load(); n != seen {
				seen = n
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				// An error leaves the frames in the log, for the next round (or the commit
				// past autoCheckpointPages) to copy: nothing is lost either way.
				var busy, frames, copied int
				_ = s.db.QueryRowContext(ctx, checkpointQuery).Scan(&busy, &frames, &copied)
				cancel()
			}
		}
	}()
}

// stopCheckpoints stops the checkpointer (closing the database checkpoints what is left).
func (s *DB) stopCheckpoints() {
	if s.ckpt != nil {
		s.ckpt.once.Do(func() { close(s.ckpt.stop) })
		<-s.ckpt.done
	}
}
