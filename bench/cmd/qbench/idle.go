//go:build unix

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ---- idle ----

// idleOpts are qbench idle's knobs (also used by qbench peer).
type idleOpts struct {
	settle, window time.Duration
	target         float64
	env            []string // extra QGATE_* settings, e.g. QGATE_KAFKA_FETCH_WAIT for an A/B
}

// cmdIdle measures the CPU an idle `qgate serve` uses in the embedded default (in-process kfake
// broker, SQLite), nothing arriving: /proc/<pid>/stat over the window, after it settled.
func cmdIdle(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	var o idleOpts
	var qgate string
	var runs int
	var failOnMiss bool
	fs := flag.NewFlagSet("qbench idle", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&qgate, "qgate", "", "qgate binary to run (default: go build ./cmd/qgate into a temp dir)")
	fs.IntVar(&runs, "runs", 3, "repeat this many times (a fresh process each time) and print the median (1 to 20)")
	fs.DurationVar(&o.settle, "settle", 5*time.Second, "wait this long after qgate is ready before measuring")
	fs.DurationVar(&o.window, "duration", 10*time.Second, "measured window")
	fs.Float64Var(&o.target, "target-cores", 0.02, "target CPU in cores (at most)")
	fs.BoolVar(&failOnMiss, "fail-on-miss", false, "exit 3 when the median misses its target")
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	if runs < 1 || runs > 20 || o.window < time.Second || o.settle < 0 {
		return 2, fmt.Errorf("bad flags: -runs 1..20, -duration >= 1s")
	}
	o.env = fs.Args()
	bindir, err := os.MkdirTemp("", "qbench-bin-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(bindir)
	bin, err := buildQgate(ctx, qgate, bindir, stderr)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(stdout, "# idle: load average %s at start\n", loadAvg())
	var all []*result
	for r := 1; r <= runs; r++ {
		res, err := o.measure(ctx, bin, stderr)
		if err != nil {
			return 1, err
		}
		res.text = strings.TrimSpace(res.text + " load=" + loadAvg())
		fmt.Fprintf(stdout, "run=%d/%d %s\n", r, runs, res)
		all = append(all, res)
	}
	m := medianResult(all)
	fmt.Fprintf(stdout, "# median of %d run(s)\n%s\n", runs, m)
	if !m.pass() && failOnMiss {
		return 3, fmt.Errorf("a target was missed")
	}
	return 0, nil
}

// measure starts `qgate serve` with no broker and no database configured (the embedded
// default), waits until it is ready and o.settle more, and reads its CPU over o.window.
func (o idleOpts) measure(ctx context.Context, bin string, stderr io.Writer) (*result, error) {
	dir, err := os.MkdirTemp("", "qbench-idle-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o700); err != nil {
		return nil, err
	}
	env := append(withoutQGATE(os.Environ()),
		"QGATE_ADDR="+addr,
		"QGATE_DATA_DIR="+data,
		"QGATE_ADMIN_KEY="+randomHex(16),
		"QGATE_SECRET_KEY="+randomHex(32),
		"QGATE_LOG_LEVEL=warn",
	)
	env = append(env, o.env...)
	serve, err := startProc("qgate", bin, []string{"serve"}, env, filepath.Join(dir, "qgate.log"), nil)
	if err != nil {
		return nil, err
	}
	defer serve.stop(30 * time.Second)
	if err := waitReady(ctx, "http://"+addr, serve); err != nil {
		return nil, err
	}
	if !sleepCtx(ctx, o.settle) {
		return nil, ctx.Err()
	}
	c0, t0 := must(serve.cpu())
	if !sleepCtx(ctx, o.window) {
		return nil, ctx.Err()
	}
	c1, t1 := must(serve.cpu())
	if serve.exited() {
		return nil, fmt.Errorf("qgate serve died:\n%s", serve.tail(20))
	}
	if c0 < 0 || c1 < 0 {
		return nil, fmt.Errorf("cannot read /proc/%d/stat", serve.cmd.Process.Pid)
	}
	res := newResult("idle qgate serve (embedded broker, SQLite, nothing arriving)")
	res.set("qgate_cores", (c1-c0).Seconds()/t1.Sub(t0).Seconds(), 3)
	res.set("window_s", t1.Sub(t0).Seconds(), 1)
	res.judge, res.target, res.atMost = "qgate_cores", o.target, true
	return res, nil
}

// must pairs a CPU reading (-1 on error) with the time it was taken.
func must(d time.Duration, err error) (time.Duration, time.Time) {
	if err != nil {
		return -1, time.Now()
	}
	return d, time.Now()
}
