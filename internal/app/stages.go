package app

import (
	"context"
	"errors"
	"fmt"
	"io"

	"go.uber.org/zap"
)

// stage is a pipeline stage running in the background: the router or the dispatcher.
type stage struct {
	name string
	stop context.CancelFunc // asks it to finish: in-flight work ends, durable outcomes are committed
	done chan struct{}      // closed when it returned
	src  io.Closer          // its consumer: closing it leaves the consumer group
}

// startStage runs run in the background as a stage reading from src.
func (a *App) startStage(name string, src io.Closer, run func(context.Context) error) {
	ctx, stop := context.WithCancel(context.Background())
	s := stage{name: name, stop: stop, done: make(chan struct{}), src: src}
	go func() {
		defer close(s.done)
		err := run(ctx)
		if err != nil {
			a.log.Error(name+" stopped", zap.Error(err))
		}
		if ctx.Err() == nil { // nobody asked it to stop
			died := fmt.Errorf("%s stopped by itself", name)
			if err != nil {
				died = fmt.Errorf("%s stopped by itself: %w", name, err)
			}
			select {
			case a.stageDied <- died:
			default:
			}
		}
	}()
	a.stages = append(a.stages, s)
}

// stopStages asks every stage to stop at once and waits for them within ctx: stopped one after
// the other, a router slow to commit what it routed would eat the time the dispatcher needs to
// finish its in-flight attempts and commit their outcomes. Each stage's consumer is closed
// (leaving its group) once the stage returned, or when ctx ended. ended reports whether every
// stage returned: until then, what the stages write through must stay open.
func (a *App) stopStages(ctx context.Context) (ended bool, err error) {
	for _, s := range a.stages {
		s.stop()
	}
	ended = true
	var errs []error
	for _, s := range a.stages {
		select {
		case <-s.done: // checked first: a stage that returned is never reported late
		default:
			select {
			case <-s.done:
			case <-ctx.Done():
				ended = false
				errs = append(errs, fmt.Errorf("%s did not stop in time", s.name))
			}
		}
		if err := s.src.Close(); err != nil {
			errs = append(errs, fmt.Errorf("%s consumer: %w", s.name, err))
		}
	}
	a.stages = nil
	return ended, errors.Join(errs...)
}
