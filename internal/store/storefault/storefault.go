// Package storefault makes a store fail on command, for tests. An Injector wraps the
// database/sql driver connector the store opens with (store.OpenWith with
// store.Options{WrapConnector: inj.Wrap}); its rules make connecting, beginning a transaction,
// running a statement or committing fail with an error, or block until the call's context ends
// (a timeout), on every call or on the n-th, until they are cleared. It works the same on
// SQLite and PostgreSQL because it sits between database/sql and the driver.
//
// Only tests use it: production code never imports this package.
package storefault

import (
	"bytes"
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Op is a driver call a rule can fail.
type Op string

// The calls a rule can fail.
const (
	Connect Op = "connect" // opening a connection (the pool opens them as it needs)
	Begin   Op = "begin"   // BEGIN
	Exec    Op = "exec"    // a statement that returns no rows, in or out of a transaction
	Query   Op = "query"   // a statement that returns rows
	Commit  Op = "commit"  // COMMIT
)

// ErrInjected is wrapped by every error a rule makes.
var ErrInjected = errors.New("storefault: injected fault")

// Rule says which calls fail and how.
type Rule struct {
	Op Op
	// Match, when set, limits the rule to statements (Exec, Query) whose text contains it.
	Match string
	// MatchArg, when set, limits the rule to statements with a string or []byte argument that
	// contains it (e.g. one delivery's ID: a fault for one caller's rows only).
	MatchArg string
	// After is how many matching calls pass before the rule fires: After 2 fails the third.
	After int
	// Times is how many calls the rule fires on; 0: every matching call until it is removed.
	Times int
	// Err is the error returned, wrapped with the op and ErrInjected (every injected fault is
	// errors.Is ErrInjected); nil means ErrInjected alone.
	Err error
	// Block makes the call wait until its context ends, then fail with the context's error (a
	// store that does not answer). Removing the rule (or Clear) releases the calls it blocks,
	// which then proceed normally. A commit waits on the context its transaction began with.
	Block bool
	// Delay makes the call wait this long first (a slow store), or fail with the context's
	// error if that ends sooner; then Err, when set, is returned, else the call proceeds.
	Delay time.Duration
	// Applied, for Commit only, commits and then reports the failure: the caller hears an error
	// for rows that are durable (a connection lost while the commit's answer was on its way).
	Applied bool
}

// Injector holds the rules of the stores it wraps. It is safe for concurrent use.
type Injector struct {
	mu    sync.Mutex
	rules []*rule
	fired map[Op]int
	calls map[Op]int
	stmts map[Statement]int
}

// Statement is one statement text run as op (Exec or Query).
type Statement struct {
	Op    Op
	Query string
}

type rule struct {
	Rule
	seen, fired int
	release     chan struct{} // closed when the rule is removed: the calls it blocks proceed
}

// New returns an Injector without rules: wrapped stores work normally.
func New() *Injector {
	return &Injector{fired: map[Op]int{}, calls: map[Op]int{}, stmts: map[Statement]int{}}
}

// Add adds a rule and returns the function that removes it (and releases the calls it
// blocks); removing it twice is harmless. Rules are checked in the order they were added and
// the first that fires decides.
func (in *Injector) Add(r Rule) (remove func()) {
	in.mu.Lock()
	defer in.mu.Unlock()
	added := &rule{Rule: r, release: make(chan struct{})}
	in.rules = append(in.rules, added)
	return func() {
		in.mu.Lock()
		defer in.mu.Unlock()
		for i, r := range in.rules {
			if r == added {
				in.rules = append(in.rules[:i:i], in.rules[i+1:]...)
				close(r.release)
				return
			}
		}
	}
}

// Fail adds a rule that fails every call of op with err until it is removed.
func (in *Injector) Fail(op Op, err error) (remove func()) { return in.Add(Rule{Op: op, Err: err}) }

// Hang adds a rule that blocks every call of op until its context ends, until it is removed.
func (in *Injector) Hang(op Op) (remove func()) { return in.Add(Rule{Op: op, Block: true}) }

// Clear removes every rule and releases the calls blocked by one: the store works normally
// again.
func (in *Injector) Clear() {
	in.mu.Lock()
	rules := in.rules
	in.rules = nil
	in.mu.Unlock()
	for _, r := range rules {
		close(r.release)
	}
}

// Fired reports on how many calls of op a rule fired.
func (in *Injector) Fired(op Op) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.fired[op]
}

// Calls reports how many calls of op the wrapped stores made, faulted or not.
func (in *Injector) Calls(op Op) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.calls[op]
}

// Statements reports how many times each statement text ran (Exec and Query calls, faulted or
// not): a copy, so that a test can take one before and one after a piece of work and compare.
func (in *Injector) Statements() map[Statement]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make(map[Statement]int, len(in.stmts))
	for k, v := range in.stmts {
		out[k] = v
	}
	return out
}

// Wrap returns c with the injector's faults: pass it as store.Options.WrapConnector.
func (in *Injector) Wrap(c driver.Connector) driver.Connector { return &connector{in: in, c: c} }

// verdict is what a call should do.
type verdict struct {
	err     error // after any wait; nil: proceed (released from a block, a delay without Err)
	block   bool
	delay   time.Duration
	applied bool
	release <-chan struct{}
}

// check counts a call and returns the rule that fires on it, if any.
func (in *Injector) check(op Op, query string, args []driver.NamedValue) (verdict, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.calls[op]++
	if op == Exec || op == Query {
		in.stmts[Statement{op, query}]++
	}
	for _, r := range in.rules {
		if r.Op != op || (r.Match != "" && !strings.Contains(query, r.Match)) || (r.MatchArg != "" && !hasArg(args, r.MatchArg)) {
			continue
		}
		if r.Times > 0 && r.fired >= r.Times {
			continue
		}
		r.seen++
		if r.seen <= r.After {
			continue
		}
		r.fired++
		in.fired[op]++
		var err error
		switch {
		case r.Err != nil:
			err = fmt.Errorf("storefault: %s: %w: %w", op, ErrInjected, r.Err)
		case r.Delay == 0 && !r.Block:
			err = fmt.Errorf("storefault: %s: %w", op, ErrInjected)
		}
		return verdict{err: err, block: r.Block, delay: r.Delay, applied: r.Applied, release: r.release}, true
	}
	return verdict{}, false
}

func hasArg(args []driver.NamedValue, sub string) bool {
	for _, a := range args {
		switch v := a.Value.(type) {
		case string:
			if strings.Contains(v, sub) {
				return true
			}
		case []byte:
			if bytes.Contains(v, []byte(sub)) {
				return true
			}
		}
	}
	return false
}

// fault applies a verdict before a call: it returns the error to fail with, or nil when the
// call should go ahead (no rule fired, or a block was released by Clear).
func (in *Injector) fault(ctx context.Context, op Op, query string, args []driver.NamedValue) error {
	v, ok := in.check(op, query, args)
	if !ok {
		return nil
	}
	return v.wait(ctx, op)
}

// wait does what v says before a call: it blocks or delays, and returns the error to fail with
// (nil: go ahead).
func (v verdict) wait(ctx context.Context, op Op) error {
	if v.block {
		select {
		case <-ctx.Done():
			return fmt.Errorf("storefault: %s blocked until the context ended: %w: %w", op, ErrInjected, ctx.Err())
		case <-v.release:
			return nil
		}
	}
	if v.delay > 0 {
		t := time.NewTimer(v.delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return fmt.Errorf("storefault: %s delayed past the context's end: %w: %w", op, ErrInjected, ctx.Err())
		case <-t.C:
		}
	}
	return v.err
}
