package storefault

import (
	"context"
	"database/sql/driver"
	"errors"
)

// The wrappers below pass every call to the driver's own connection, statement and
// transaction after asking the injector; each optional database/sql interface they implement
// falls back to what database/sql does without it (driver.ErrSkip) when the driver lacks it.

type connector struct {
	in *Injector
	c  driver.Connector
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	if err := c.in.fault(ctx, Connect, "", nil); err != nil {
		return nil, err
	}
	inner, err := c.c.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return &conn{in: c.in, c: inner}, nil
}

func (c *connector) Driver() driver.Driver { return c.c.Driver() }

type conn struct {
	in *Injector
	c  driver.Conn
}

var (
	_ driver.ConnBeginTx        = (*conn)(nil)
	_ driver.ConnPrepareContext = (*conn)(nil)
	_ driver.ExecerContext      = (*conn)(nil)
	_ driver.QueryerContext     = (*conn)(nil)
	_ driver.Pinger             = (*conn)(nil)
	_ driver.SessionResetter    = (*conn)(nil)
	_ driver.Validator          = (*conn)(nil)
	_ driver.NamedValueChecker  = (*conn)(nil)
)

func (c *conn) Prepare(query string) (driver.Stmt, error) {
	return c.PrepareContext(context.Background(), query)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	var s driver.Stmt
	var err error
	if p, ok := c.c.(driver.ConnPrepareContext); ok {
		s, err = p.PrepareContext(ctx, query)
	} else {
		s, err = c.c.Prepare(query)
	}
	if err != nil {
		return nil, err
	}
	return &stmt{conn: c, s: s, query: query}, nil
}

func (c *conn) Close() error { return c.c.Close() }

func (c *conn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	if err := c.in.fault(ctx, Begin, "", nil); err != nil {
		return nil, err
	}
	var t driver.Tx
	var err error
	if b, ok := c.c.(driver.ConnBeginTx); ok {
		t, err = b.BeginTx(ctx, opts)
	} else {
		t, err = c.c.Begin() //nolint:staticcheck // the driver offers nothing else
	}
	if err != nil {
		return nil, err
	}
	return &tx{in: c.in, t: t, ctx: ctx}, nil
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	e, ok := c.c.(driver.ExecerContext)
	if !ok {
		return nil, driver.ErrSkip // database/sql prepares the statement instead: stmt checks it
	}
	if err := c.in.fault(ctx, Exec, query, args); err != nil {
		return nil, err
	}
	return e.ExecContext(ctx, query, args)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := c.c.(driver.QueryerContext)
	if !ok {
		return nil, driver.ErrSkip
	}
	if err := c.in.fault(ctx, Query, query, args); err != nil {
		return nil, err
	}
	return q.QueryContext(ctx, query, args)
}

func (c *conn) Ping(ctx context.Context) error {
	if p, ok := c.c.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *conn) ResetSession(ctx context.Context) error {
	if r, ok := c.c.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *conn) IsValid() bool {
	if v, ok := c.c.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	if n, ok := c.c.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

type stmt struct {
	conn  *conn
	s     driver.Stmt
	query string
}

var (
	_ driver.StmtExecContext   = (*stmt)(nil)
	_ driver.StmtQueryContext  = (*stmt)(nil)
	_ driver.NamedValueChecker = (*stmt)(nil)
)

func (s *stmt) Close() error  { return s.s.Close() }
func (s *stmt) NumInput() int { return s.s.NumInput() }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	return s.ExecContext(context.Background(), named(args))
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	return s.QueryContext(context.Background(), named(args))
}

func (s *stmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	if err := s.conn.in.fault(ctx, Exec, s.query, args); err != nil {
		return nil, err
	}
	if e, ok := s.s.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	vs, err := values(args)
	if err != nil {
		return nil, err
	}
	return s.s.Exec(vs) //nolint:staticcheck // the driver offers nothing else
}

func (s *stmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	if err := s.conn.in.fault(ctx, Query, s.query, args); err != nil {
		return nil, err
	}
	if q, ok := s.s.(driver.StmtQueryContext); ok {
		return q.QueryContext(ctx, args)
	}
	vs, err := values(args)
	if err != nil {
		return nil, err
	}
	return s.s.Query(vs) //nolint:staticcheck // the driver offers nothing else
}

// CheckNamedValue asks the statement, then its connection, as database/sql would ask them
// without the wrapper.
func (s *stmt) CheckNamedValue(nv *driver.NamedValue) error {
	if n, ok := s.s.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(nv)
	}
	return s.conn.CheckNamedValue(nv)
}

func named(vs []driver.Value) []driver.NamedValue {
	out := make([]driver.NamedValue, len(vs))
	for i, v := range vs {
		out[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	return out
}

func values(args []driver.NamedValue) ([]driver.Value, error) {
	out := make([]driver.Value, len(args))
	for i, a := range args {
		if a.Name != "" {
			return nil, errors.New("storefault: the driver does not support named parameters")
		}
		out[i] = a.Value
	}
	return out, nil
}

// tx fails a commit by rolling the transaction back (nothing of it is applied) and returning
// the rule's error; a blocked commit waits on the context the transaction began with. With
// Applied it commits first.
type tx struct {
	in  *Injector
	t   driver.Tx
	ctx context.Context
}

func (t *tx) Commit() error {
	v, ok := t.in.check(Commit, "", nil)
	if !ok {
		return t.t.Commit()
	}
	if v.block {
		select {
		case <-t.ctx.Done():
			t.t.Rollback()
			return errors.Join(v.err, t.ctx.Err())
		case <-v.release:
			return t.t.Commit()
		}
	}
	if v.applied {
		if err := t.t.Commit(); err != nil {
			return err
		}
		return v.err
	}
	t.t.Rollback()
	return v.err
}

func (t *tx) Rollback() error { return t.t.Rollback() }
