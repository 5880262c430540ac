package dispatch

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/store"
)

// write applies a batch durably; it retries until it succeeds or ctx ends.
func (l *lane) write(ctx context.Context, b store.Batch) bool {
	for i := 0; ; i++ {
		err := l.d.status.Write(ctx, b)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		l.d.log.Warn("status write failed; retrying", zap.Error(err), zap.String("destinationId", l.destID))
		if !retryPause(ctx, i) {
			return false
		}
	}
}

// retryPause waits before retry number attempt (0-based) of a store call that failed: 100 ms
// more each time, at most 2 s. It returns false when ctx ends first.
func retryPause(ctx context.Context, attempt int) bool {
	return sleep(ctx, time.Duration(min(attempt+1, 20))*100*time.Millisecond)
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
