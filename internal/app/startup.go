package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"

	"github.com/qgate/qgate/internal/kafka"
	"github.com/qgate/qgate/internal/store"
)

// Start-up waits: Kafka and PostgreSQL are often started together with qgate (compose,
// Kubernetes), so a node waits for them — for at most QGATE_STARTUP_TIMEOUT, with backoff,
// logging each failed try — instead of failing on the first refused connection. A failure that
// waiting cannot cure (a bad password, an unknown database, a data dir that cannot be created)
// ends the wait at once.

const (
	startupFirstDelay = 250 * time.Millisecond
	startupMaxDelay   = 5 * time.Second
	startupTryTimeout = 10 * time.Second // one try (dial, ping, migrate, create topics)
)

// permanentError marks a start-up failure that waiting cannot cure: waitFor gives up at once.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// waitFor calls try until it succeeds, returns a permanentError, or ctx ends (the start-up
// deadline, or a signal). Each failed try is logged at warn with its cause and the next delay;
// the error returned names what was waited for, how long, and the last real cause.
func waitFor(ctx context.Context, log *zap.Logger, what string, try func(context.Context) error) error {
	start := time.Now()
	delay := startupFirstDelay
	var last error
	for attempt := 1; ; attempt++ {
		tctx, cancel := context.WithTimeout(ctx, startupTryTimeout)
		err := try(tctx)
		cancel()
		if err == nil {
			if attempt > 1 {
				log.Info("start-up: "+what+" answered", zap.Int("tries", attempt), zap.Duration("waited", time.Since(start).Round(time.Millisecond)))
			}
			return nil
		}
		var perm permanentError
		if errors.As(err, &perm) {
			return fmt.Errorf("%s: %w", what, perm.error)
		}
		if last == nil || ctx.Err() == nil || !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
			last = err // a try cut short by the end of ctx says less than the one before
		}
		if ctx.Err() == nil {
			log.Warn("start-up: waiting for "+what, zap.String("cause", OneLine(err)), zap.Int("try", attempt),
				zap.Duration("retryIn", delay), zap.Duration("waited", time.Since(start).Round(time.Millisecond)))
			select {
			case <-time.After(delay):
				delay = min(2*delay, startupMaxDelay)
				continue
			case <-ctx.Done():
			}
		}
		if errors.Is(context.Cause(ctx), errStartupDeadline) {
			return fmt.Errorf("%s did not answer within QGATE_STARTUP_TIMEOUT (%s, %d tries); last error: %w",
				what, time.Since(start).Round(100*time.Millisecond), attempt, last)
		}
		return fmt.Errorf("start-up interrupted while waiting for %s: %w", what, last)
	}
}

// errStartupDeadline is the cause of the start-up context's end when the bound passed.
var errStartupDeadline = errors.New("QGATE_STARTUP_TIMEOUT passed")

// postgresPermanent reports PostgreSQL errors that waiting cannot cure: a URL that does not
// parse, and any error the server itself answered with except the ones a starting, busy or
// restarting server sends (classes 08 connection exception, 53 insufficient resources, 57
// operator intervention such as "the database system is starting up", 40 transaction rollback).
func postgresPermanent(err error) bool {
	var perr *pgconn.ParseConfigError
	if errors.As(err, &perr) {
		return true
	}
	var pg *pgconn.PgError
	if !errors.As(err, &pg) || len(pg.Code) < 2 {
		return false
	}
	switch pg.Code[:2] {
	case "08", "53", "57", "40":
		return false
	}
	return true
}

// OneLine keeps an error on one log or stderr line: joined errors (and pgx's list of the
// addresses it tried) carry newlines and tabs.
func OneLine(err error) string { return lineJoiner.Replace(err.Error()) }

var lineJoiner = strings.NewReplacer(":\n\t", ": ", "\n\t", "; ", "\n", "; ")

// connect opens the store and makes sure Kafka has qgate's topics, both at once, each waiting
// (within ctx) for its server. The first failure cancels the other wait; when the start-up
// deadline ended both, both causes are returned.
func (a *App) connect(ctx context.Context) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	go func() { errs <- a.openStore(cctx) }()
	go func() { errs <- a.prepareKafka(cctx) }()
	var first error
	for range 2 {
		err := <-errs
		switch {
		case err == nil:
		case first == nil:
			first = err
			cancel()
		case errors.Is(context.Cause(ctx), errStartupDeadline):
			first = fmt.Errorf("%w; %w", first, err)
		}
	}
	return first
}

// openStore opens the store. SQLite is a local file with nothing to wait for: one try.
func (a *App) openStore(ctx context.Context) error {
	if a.cfg.DatabaseURL == "" {
		db, err := store.OpenWith(ctx, "", a.cfg.DataDir, a.opts.Store)
		if err != nil {
			return fmt.Errorf("the store (SQLite in QGATE_DATA_DIR=%s): %w", a.cfg.DataDir, err)
		}
		a.store = db
		return nil
	}
	return waitFor(ctx, a.log, "the store (PostgreSQL)", func(ctx context.Context) error {
		db, err := store.OpenWith(ctx, a.cfg.DatabaseURL, a.cfg.DataDir, a.opts.Store)
		if err != nil {
			if postgresPermanent(err) {
				return permanentError{err}
			}
			return err
		}
		a.store = db
		return nil
	})
}

// prepareKafka starts the embedded broker in the default mode, then creates the missing topics,
// waiting for the brokers to answer.
func (a *App) prepareKafka(ctx context.Context) error {
	a.brokers = a.cfg.KafkaBrokers
	if a.cfg.Embedded() {
		b, err := kafka.StartEmbedded(0)
		if err != nil {
			return err
		}
		a.broker, a.brokers = b, b.Addrs()
		a.log.Warn("EMBEDDED KAFKA BROKER IN MEMORY: NOT DURABLE. Everything queued is lost when this process stops. Set QGATE_KAFKA_BROKERS for production.",
			zap.Strings("brokers", a.brokers))
	}
	topics := []kafka.TopicSpec{
		{Name: a.cfg.ProfileTopic, Partitions: a.cfg.Partitions, ReplicationFactor: a.cfg.ReplicationFactor},
		{Name: a.cfg.DeliveryTopic, Partitions: a.cfg.Partitions, ReplicationFactor: a.cfg.ReplicationFactor},
	}
	var created []string // over every try: a try may create one topic and fail on the other
	err := waitFor(ctx, a.log, "Kafka at "+strings.Join(a.brokers, ","), func(ctx context.Context) error {
		if err := kafka.Ping(ctx, a.brokers); err != nil {
			return err // names the dial error, which CreateTopics hides behind "Broker Not Available"
		}
		c, err := kafka.EnsureTopics(ctx, a.brokers, topics...)
		created = append(created, c...)
		return err
	})
	if err != nil || len(created) == 0 {
		return err
	}
	// Topics this process just created: every broker must know their leaders before the first
	// profile is accepted, or the first requests answer 503 (kafka.AwaitLeaders).
	a.log.Info("created Kafka topics; waiting until every broker leads them", zap.Strings("topics", created))
	return waitFor(ctx, a.log, "the leaders of the new topics on every broker", func(ctx context.Context) error {
		return kafka.AwaitLeaders(ctx, a.brokers, created...)
	})
}
