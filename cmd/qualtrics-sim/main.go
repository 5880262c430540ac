// Command qualtrics-sim runs the Qualtrics simulator (package
// internal/simulator) as a standalone server for demos and benchmarks.
//
//	qualtrics-sim -addr 127.0.0.1:8090 -config workflows.json -rate 3000
//
// Without -config it serves one demo workflow, WF_demo (username "qgate",
// token "sim-token"). It stops gracefully on SIGINT or SIGTERM.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/qgate/qgate/internal/simulator"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return serve(ctx, os.Args[1:], os.Stderr, nil)
}

// fileConfig is the -config file.
type fileConfig struct {
	// Workflows to serve; each needs an id and a token.
	Workflows []simulator.Workflow `json:"workflows"`
	// APITokens are accepted by /API/v3 besides the workflows' tokens.
	APITokens []string `json:"apiTokens"`
	// PerTokenRate limits calls per token per minute (0 = off).
	PerTokenRate int `json:"perTokenRate"`
	// MaxRuns bounds the run history per workflow (0 = default 100000).
	MaxRuns int `json:"maxRuns"`
	// KeepBodies false drops event bodies from the history (benchmarks).
	KeepBodies *bool `json:"keepBodies"`
}

// demoWorkflow is served when no -config is given.
var demoWorkflow = simulator.Workflow{ID: "WF_demo", Username: "qgate", Token: "sim-token"}

// loadConfig reads and validates a -config file; an empty path gives the
// demo workflow.
func loadConfig(path string) (fileConfig, error) {
	if path == "" {
		return fileConfig{Workflows: []simulator.Workflow{demoWorkflow}}, nil
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		return fileConfig{}, fmt.Errorf("load config: %w", err)
	}
	var fc fileConfig
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&fc); err != nil {
		return fileConfig{}, fmt.Errorf("load config %s: %w", path, err)
	}
	if err := fc.validate(); err != nil {
		return fileConfig{}, fmt.Errorf("load config %s: %w", path, err)
	}
	return fc, nil
}

func (fc fileConfig) validate() error {
	var errs []error
	seen := make(map[string]bool)
	for i, wf := range fc.Workflows {
		switch {
		case wf.ID == "":
			errs = append(errs, fmt.Errorf("workflows[%d]: id is required", i))
		case seen[wf.ID]:
			errs = append(errs, fmt.Errorf("workflows[%d]: duplicate id %q", i, wf.ID))
		}
		seen[wf.ID] = true
		if wf.Token == "" {
			errs = append(errs, fmt.Errorf("workflows[%d]: token is required", i))
		}
	}
	if fc.PerTokenRate < 0 {
		errs = append(errs, errors.New("perTokenRate must not be negative"))
	}
	return errors.Join(errs...)
}

// serve parses args, runs the simulator until ctx ends and returns the exit
// code. ready, if set, receives the server's URL once it listens.
func serve(ctx context.Context, args []string, stderr io.Writer, ready func(url string)) int {
	log := slog.New(slog.NewTextHandler(stderr, nil))
	fs := flag.NewFlagSet("qualtrics-sim", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8090", "listen address")
	configPath := fs.String("config", "", "JSON file of workflows (default: one demo workflow)")
	rate := fs.Int("rate", simulator.DefaultRatePerMinute, "calls per minute per workflow (negative: unlimited)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *rate == 0 {
		fmt.Fprintln(stderr, "qualtrics-sim: -rate must not be 0")
		return 2
	}
	fc, err := loadConfig(*configPath)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}

	sim := simulator.New(simulator.Config{
		RatePerMinute: *rate,
		PerTokenRate:  fc.PerTokenRate,
		MaxRuns:       fc.MaxRuns,
		KeepBodies:    fc.KeepBodies,
		APITokens:     fc.APITokens,
	})
	for _, wf := range fc.Workflows {
		sim.AddWorkflow(wf)
	}
	srv, err := sim.Listen(*addr)
	if err != nil {
		log.Error("start", "err", err)
		return 1
	}
	for _, wf := range sim.Workflows() {
		log.Info("workflow", "id", wf.ID, "url", sim.EventURL(srv.URL, wf.ID), "username", wf.Username)
	}
	log.Info("listening", "url", srv.URL, "ratePerMinute", *rate)
	if ready != nil {
		ready(srv.URL)
	}

	<-ctx.Done()
	log.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	return 0
}
