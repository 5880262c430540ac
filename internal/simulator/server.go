package simulator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Server is a Simulator listening on a real address.
type Server struct {
	URL string // e.g. http://127.0.0.1:41234

	sim    *Simulator
	srv    *http.Server
	served chan error

	once sync.Once
}

// Start creates a Simulator and serves it on 127.0.0.1 at a free port.
func Start(cfg Config) (*Simulator, *Server, error) {
	sim := New(cfg)
	srv, err := sim.Listen("127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	return sim, srv, nil
}

// Listen serves the simulator on addr until the returned Server is closed.
func (s *Simulator) Listen(addr string) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("simulator: listen %s: %w", addr, err)
	}
	sv := &Server{
		URL:    "http://" + ln.Addr().String(),
		sim:    s,
		srv:    &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second},
		served: make(chan error, 1),
	}
	go func() { sv.served <- sv.srv.Serve(ln) }()
	return sv, nil
}

// Addr returns the host:port the server listens on.
func (sv *Server) Addr() string { return sv.URL[len("http://"):] }

// Close stops the server at once: hanging and delayed calls are aborted,
// connections closed, and Close returns when every handler has returned.
func (sv *Server) Close() error {
	sv.sim.stop()
	err := sv.srv.Close()
	sv.sim.inflight.Wait()
	return errors.Join(err, sv.wait())
}

// Shutdown stops accepting calls, aborts hanging and delayed ones, and waits
// for the others to finish or ctx to end.
func (sv *Server) Shutdown(ctx context.Context) error {
	sv.sim.stop()
	err := sv.srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(err, sv.srv.Close())
	}
	sv.sim.inflight.Wait()
	return errors.Join(err, sv.wait())
}

// wait returns Serve's error once; later calls return nil.
func (sv *Server) wait() error {
	var err error
	sv.once.Do(func() {
		if e := <-sv.served; e != nil && !errors.Is(e, http.ErrServerClosed) {
			err = fmt.Errorf("simulator: serve: %w", e)
		}
	})
	return err
}
