package kafka

import (
	"bytes"
	"io"

	"github.com/segmentio/kafka-go/protocol"

	"github.com/qgate/qgate/internal/queue"
)

// The record adapter: queue.Messages as kafka-go protocol record batches.

// records reads a partition batch's messages as protocol records without copying them.
type records struct {
	msgs  []*queue.Message
	i     int
	rec   protocol.Record
	key   bytesReader
	value bytesReader
}

func (r *records) ReadRecord() (*protocol.Record, error) {
	if r.i >= len(r.msgs) {
		return nil, io.EOF
	}
	m := r.msgs[r.i]
	r.i++
	r.rec = protocol.Record{}
	if m.Key != nil {
		r.key.Reset(m.Key)
		r.rec.Key = &r.key
	}
	if m.Value != nil {
		r.value.Reset(m.Value)
		r.rec.Value = &r.value
	}
	return &r.rec, nil
}

type bytesReader struct{ bytes.Reader }
