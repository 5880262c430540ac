package kafka

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/qgate/qgate/internal/queue"
)

// The producer's queue: Publish calls wait as pubReqs; one flusher takes them in order and
// group-commits them (producer.go has the API; producer_round.go the produce rounds).

// pubReq is one Publish call waiting for its messages to be acknowledged.
type pubReq struct {
	msgs     []queue.Message
	deadline time.Time
	// state: reqQueued until the flusher takes it (reqSent) or its caller gives up first
	// (reqAbandoned); whoever moves it first decides.
	state atomic.Int32
	done  chan struct{}
	err   error // set before done is closed
}

const (
	reqQueued int32 = iota
	reqSent
	reqAbandoned
)

var errClosed = errors.New("producer closed")

func (p *Producer) run() {
	defer close(p.stopped)
	for {
		_, open := <-p.wake
		for {
			batch := p.take()
			if len(batch) == 0 {
				break
			}
			p.flush(batch)
		}
		if !open {
			p.mu.Lock()
			rest := p.pending
			p.pending = nil
			p.mu.Unlock()
			for _, r := range rest {
				if r.state.CompareAndSwap(reqQueued, reqSent) {
					r.finish(&PublishError{Err: fmt.Errorf("%w: %w", ErrUnavailable, errClosed)})
				}
			}
			return
		}
	}
}

func (r *pubReq) finish(err error) {
	r.err = err
	close(r.done)
}

// take removes from the queue the requests of the next produce: in arrival order, up to the
// byte bound (at least one). Requests whose caller gave up are dropped; those too close to their
// deadline are answered "not written".
func (p *Producer) take() []*pubReq {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	var batch []*pubReq
	var bytes int64
	n := 0
	for ; n < len(p.pending); n++ {
		r := p.pending[n]
		size := int64(0)
		for _, m := range r.msgs {
			size += int64(len(m.Key) + len(m.Value))
		}
		if len(batch) > 0 && bytes+size > p.opts.MaxMessageBytes {
			break
		}
		if r.deadline.Sub(now) < minSendTime {
			if r.state.CompareAndSwap(reqQueued, reqSent) {
				r.finish(&PublishError{Err: fmt.Errorf("%w: not sent: too little time left before the deadline", ErrUnavailable)})
			}
			continue
		}
		if !r.state.CompareAndSwap(reqQueued, reqSent) {
			continue // abandoned
		}
		batch = append(batch, r)
		bytes += size
	}
	clear(p.pending[:n])
	p.pending = append(p.pending[:0], p.pending[n:]...)
	return batch
}
