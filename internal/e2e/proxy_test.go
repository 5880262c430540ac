//go:build linux

package e2e

import (
	"net"
	"sync"
	"testing"
	"time"
)

// tcpProxy forwards TCP connections from a loopback address to target, and fails on command:
// cut closes every connection and refuses new ones (the listener is closed: connection
// refused); blackhole keeps every connection open but moves no byte either way, and new
// connections are accepted but never forwarded, as across a network partition; restore ends
// either. A connection caught in a blackhole never carries another byte: it is closed when the
// blackhole ends, with what it held dropped (a partition that outlasted TCP's retransmissions),
// so a write that timed out in the blackhole never lands late.
type tcpProxy struct {
	t      *testing.T
	addr   string
	target string

	mu       sync.Mutex
	ln       net.Listener // nil while cut or closed
	conns    map[net.Conn]struct{}
	healed   chan struct{} // open while blackholed; closed (and never replaced) when forwarding
	closed   chan struct{} // closed at cleanup
	accepted int
	first    chan struct{} // closed at the first connection accepted
}

// startProxy listens on addr ("127.0.0.1:0" for any port) and forwards to target. It is closed
// at cleanup.
func startProxy(t *testing.T, addr, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{t: t, target: target, conns: map[net.Conn]struct{}{}, healed: make(chan struct{}), closed: make(chan struct{}), first: make(chan struct{})}
	close(p.healed)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fatalf(t, "proxy listen on %s: %v", addr, err)
	}
	p.ln, p.addr = ln, ln.Addr().String()
	go p.serve(ln)
	t.Cleanup(p.close)
	return p
}

func (p *tcpProxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return // closed by cut or close
		}
		p.mu.Lock()
		if p.ln != ln { // cut between Accept and here
			p.mu.Unlock()
			c.Close()
			continue
		}
		p.conns[c] = struct{}{}
		if p.accepted++; p.accepted == 1 {
			close(p.first)
		}
		p.mu.Unlock()
		go p.forward(c)
	}
}

// forward dials target once the proxy passes traffic and pipes both ways until either end
// closes, the proxy cuts, or it closes.
func (p *tcpProxy) forward(c net.Conn) {
	defer p.drop(c)
	if !p.pass() {
		return
	}
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		return
	}
	if !p.track(up) {
		up.Close()
		return
	}
	defer p.drop(up)
	done := make(chan struct{}, 2)
	go func() { p.pipe(up, c); done <- struct{}{} }()
	go func() { p.pipe(c, up); done <- struct{}{} }()
	<-done // one side ended: close both (deferred), which ends the other pipe
}

func (p *tcpProxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.pass() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// pass reports whether bytes may go on now: true while the proxy forwards; while it is
// blackholed it waits, and then reports false (the connection is dropped) once the blackhole
// ended or the proxy closed.
func (p *tcpProxy) pass() bool {
	p.mu.Lock()
	healed := p.healed
	p.mu.Unlock()
	select {
	case <-healed:
		return true
	default:
	}
	select {
	case <-healed:
	case <-p.closed:
	}
	return false
}

// track registers a connection; false if the proxy was cut or closed meanwhile.
func (p *tcpProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *tcpProxy) drop(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// cut closes the listener (new connections are refused) and every open connection.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// blackhole stops every byte (held, not dropped) and holds new connections unforwarded.
func (p *tcpProxy) blackhole() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.healed:
		p.healed = make(chan struct{})
	default: // already blackholed
	}
}

// restore ends a cut (listening again on the same address) or a blackhole.
func (p *tcpProxy) restore() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.healed:
	default:
		close(p.healed)
	}
	if p.ln != nil {
		return
	}
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		var ln net.Listener
		if ln, err = net.Listen("tcp", p.addr); err == nil {
			p.ln = ln
			go p.serve(ln)
			return
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	errorf(p.t, "proxy: listen again on %s: %v", p.addr, err)
}

// open is the number of connections the proxy holds now (both sides counted).
func (p *tcpProxy) open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

func (p *tcpProxy) close() {
	p.mu.Lock()
	select {
	case <-p.closed:
		p.mu.Unlock()
		return
	default:
	}
	close(p.closed)
	p.mu.Unlock()
	p.cut()
}

// awaitFirst reports whether the proxy accepts a connection within d.
func (p *tcpProxy) awaitFirst(d time.Duration) bool {
	select {
	case <-p.first:
		return true
	case <-time.After(d):
		return false
	}
}

// accepts is the number of client connections the proxy has accepted so far.
func (p *tcpProxy) accepts() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}
