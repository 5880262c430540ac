// Package queue holds the message model shared by the domains that publish to or consume from
// the log (receiver, router, dispatch) and the Kafka adapter that carries it. It imports nothing.
package queue

// Message is one record on a topic: a key that keeps related messages on one partition, in
// order, and a value.
type Message struct {
	Key   []byte
	Value []byte
}

// PartialError is implemented by publish errors that know which messages of a batch were not
// written; a publish error without it means none of the batch can be assumed written.
type PartialError interface {
	error
	NotWritten(i int) bool
}

// Record is a consumed message with its position in the log.
type Record struct {
	Topic     string
	Partition int
	Offset    int64
	Key       []byte
	Value     []byte
}
