package kafka

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	produceAPI "github.com/segmentio/kafka-go/protocol/produce"
)

// Retry classification of produce failures: which are retried within the Publish deadline,
// which mean stale metadata, and which may have been written.

// maxRetryDelay caps the pause between two tries of a produce.
const maxRetryDelay = 250 * time.Millisecond

// staleMetadata reports whether err says the produce went to a broker that does not lead the
// partition (any more), or to no broker at all: the transport's cached metadata is out of date.
func staleMetadata(err error) bool {
	var kerr kafkago.Error
	if errors.As(err, &kerr) {
		switch kerr {
		case kafkago.NotLeaderForPartition, kafkago.LeaderNotAvailable, kafkago.BrokerNotAvailable,
			kafkago.UnknownTopicOrPartition, kafkago.FencedLeaderEpoch, kafkago.UnknownLeaderEpoch,
			kafkago.KafkaStorageError:
			return true
		}
		return false
	}
	// No kafka error code: the request was not routed (no leader known) or the connection to
	// the leader failed (refused, reset, closed): it may be gone.
	return true
}

// mayBeWritten reports whether a produce error code means the leader appended the records
// but could not confirm acks=all in time: they may still be committed (once the in-sync
// replicas catch up or shrink) and read by consumers.
func mayBeWritten(code int16) bool {
	switch kafkago.Error(code) {
	case kafkago.RequestTimedOut, kafkago.NotEnoughReplicasAfterAppend:
		return true
	}
	return false
}

func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// retriable reports whether a failed produce may succeed if tried again.
func retriable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return false
	}
	var kerr kafkago.Error
	if errors.As(err, &kerr) {
		return kerr.Temporary()
	}
	var perr *produceAPI.Error // e.g. the leaders moved between the metadata and the request
	if errors.As(err, &perr) {
		return true
	}
	var nerr net.Error
	return errors.As(err, &nerr) || errors.Is(err, net.ErrClosed) || errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
