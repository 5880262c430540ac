// Command qgate is the destination gateway between a customer data platform and Qualtrics.
//
//	qgate serve                      run every role (receiver, router, dispatcher, APIs)
//	qgate keys create --role ROLE    create an API key on the configured store; prints it once
//	qgate keys list                  list keys (never their secrets)
//	qgate keys revoke ID             revoke a key
//	qgate version                    print the version
//
// and the API commands for operators and support (docs/cli.md), which call a running qgate
// with QGATE_URL and QGATE_API_KEY: destinations, updates, deliveries, dead-letters, stats and
// alerts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/qgate/qgate/internal/access"
	"github.com/qgate/qgate/internal/app"
	"github.com/qgate/qgate/internal/config"
	"github.com/qgate/qgate/internal/store"
	"github.com/qgate/qgate/internal/version"
)

func main() { os.Exit(runCLI(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)) }

// runCLI runs the API commands (cli.go), which may read standard input, and every other
// command through run.
func runCLI(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if g := findGroup(args[0]); g != nil {
			return runAPI(g, args[1:], getenv, stdin, stdout, stderr)
		}
	}
	return run(args, getenv, stdout, stderr)
}

const usage = `usage: qgate <command> [flags]

commands:
  serve                         run qgate (configuration: QGATE_* environment variables, see README)
  keys create --role ROLE [--name NAME]   create an API key (ingest, operator, support, admin)
  keys list                     list API keys
  keys revoke ID                revoke an API key
  broker [--addr HOST:PORT]     run the in-memory Kafka-protocol broker (kfake) alone: not durable; benchmarks, demos
  healthcheck [--addr HOST:PORT] exit 0 if the qgate at QGATE_ADDR answers /readyz with 200 (container health checks)
  version                       print the version
`

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage+apiUsage())
		return 2
	}
	switch args[0] {
	case "serve":
		return serve(args[1:], getenv, stderr)
	case "broker":
		return runBroker(args[1:], stdout, stderr)
	case "keys":
		return keys(args[1:], getenv, stdout, stderr)
	case "healthcheck":
		return healthcheck(args[1:], getenv, stdout, stderr)
	case "version", "--version", "-v":
		fmt.Fprintln(stdout, "qgate", version.Version)
		return 0
	case "help", "-h", "--help":
		if len(args) > 1 && findGroup(args[1]) != nil {
			fmt.Fprint(stdout, findGroup(args[1]).usage())
			return 0
		}
		fmt.Fprint(stdout, usage+apiUsage())
		return 0
	default:
		fmt.Fprintf(stderr, "qgate: unknown command %q\n\n%s", args[0], usage+apiUsage())
		return 2
	}
}

func serve(args []string, getenv func(string) string, stderr io.Writer) int {
	cfg, err := config.Load(args, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "qgate: invalid configuration:\n%v\n", err)
		return 2
	}
	log, err := newLogger(cfg.LogLevel)
	if err != nil {
		fmt.Fprintf(stderr, "qgate: %v\n", err)
		return 1
	}
	defer log.Sync()
	for _, w := range cfg.Warnings() {
		log.Warn(w)
		fmt.Fprintln(stderr, "qgate: warning:", w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if cfg.DebugAddr != "" {
		stopDebug, err := serveDebug(cfg.DebugAddr, log)
		if err != nil {
			log.Error("qgate could not start its profiler listener", zap.Error(err))
			return 1
		}
		defer stopDebug()
	}
	a, err := app.New(ctx, cfg, log)
	if err != nil {
		return failed(log, stderr, "could not start", err)
	}
	if err := a.Run(ctx); err != nil {
		return failed(log, stderr, "stopped with an error", err)
	}
	return 0
}

// failed reports why serve ends badly: in the JSON log (without a stack trace: the cause is
// operational, not a bug) and as one plain line on stderr, then returns the exit code 1.
func failed(log *zap.Logger, stderr io.Writer, what string, err error) int {
	cause := app.OneLine(err)
	log.WithOptions(zap.AddStacktrace(zapcore.FatalLevel)).Error("qgate "+what, zap.String("cause", cause))
	_ = log.Sync()
	fmt.Fprintf(stderr, "qgate: %s: %s\n", what, cause)
	return 1
}

func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, err
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.EncoderConfig.TimeKey = "time"
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	zc.Sampling = nil
	return zc.Build()
}

func keys(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cfg, err := config.Load(nil, getenv)
	if err != nil {
		fmt.Fprintf(stderr, "qgate: invalid configuration:\n%v\n", err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := store.Open(ctx, cfg.DatabaseURL, cfg.DataDir)
	if err != nil {
		fmt.Fprintf(stderr, "qgate: %v\n", err)
		return 1
	}
	defer db.Close()

	switch args[0] {
	case "create":
		fs := flag.NewFlagSet("keys create", flag.ContinueOnError)
		fs.SetOutput(stderr)
		role := fs.String("role", "", "ingest, operator, support or admin")
		name := fs.String("name", "", "a name to recognise the key by (default: the role)")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if *name == "" {
			*name = *role
		}
		secret, k, err := access.Generate(*name, access.Role(*role), time.Now())
		if err != nil {
			fmt.Fprintf(stderr, "qgate: %v (want --role ingest, operator, support or admin)\n", err)
			return 2
		}
		if err := db.CreateKey(ctx, k); err != nil {
			fmt.Fprintf(stderr, "qgate: %v\n", err)
			return 1
		}
		fmt.Fprintf(stderr, "created key %s (%s) with role %s; it is shown only once:\n", k.ID, k.Name, k.Role)
		fmt.Fprintln(stdout, secret)
		return 0
	case "list":
		ks, err := db.ListKeys(ctx)
		if err != nil {
			fmt.Fprintf(stderr, "qgate: %v\n", err)
			return 1
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tNAME\tROLE\tCREATED\tREVOKED")
		for _, k := range ks {
			revoked := ""
			if k.RevokedAt != nil {
				revoked = k.RevokedAt.Format(time.RFC3339)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, k.Role, k.CreatedAt.Format(time.RFC3339), revoked)
		}
		tw.Flush()
		return 0
	case "revoke":
		if len(args) != 2 {
			fmt.Fprintln(stderr, "usage: qgate keys revoke ID")
			return 2
		}
		if err := db.RevokeKey(ctx, args[1], time.Now()); err != nil {
			if errors.Is(err, access.ErrNotFound) {
				fmt.Fprintf(stderr, "qgate: no active key %s\n", args[1])
				return 1
			}
			fmt.Fprintf(stderr, "qgate: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "revoked %s\n", args[1])
		return 0
	default:
		fmt.Fprintf(stderr, "qgate: unknown keys command %q\n\n%s", args[0], usage)
		return 2
	}
}
