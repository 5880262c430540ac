//go:build unix

package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qgate/qgate/bench"
)

// Delivery scenarios: qgate broker + qgate serve as processes, a sink (bench.Sink) in qbench's
// process as every destination, on 127.0.0.1.
//
//	qbench deliver   delivered/s across N destinations (SQLite, PostgreSQL or both)
//	qbench latency   ingest-acknowledgement → arrival latency at a fixed rate
//	qbench backlog   qgate's RSS while a backlog for a down destination is parked

// common flags of the delivery scenarios.
type deliverCommon struct {
	qgate      string
	runs       int
	retention  int64
	stores     string
	pgURL      string
	cpuprofile string
	qgateProf  string
	keep       bool
	failOnMiss bool
}

func (c *deliverCommon) register(fs *flag.FlagSet, retention int64) {
	fs.StringVar(&c.qgate, "qgate", "", "qgate binary to run (default: go build ./cmd/qgate into a temp dir)")
	fs.IntVar(&c.runs, "runs", 3, "repeat this many times (fresh processes and store each time) and print the median (1 to 20)")
	fs.Int64Var(&c.retention, "broker-retention", retention, "bytes kept per partition by the in-memory broker")
	fs.StringVar(&c.stores, "store", "sqlite", "sqlite, postgres, or both (comma list)")
	fs.StringVar(&c.pgURL, "pg-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL server (any database on it) where each run creates, and then drops, a fresh database qbench_<random>")
	fs.StringVar(&c.cpuprofile, "cpuprofile", "", "write a CPU profile of qbench itself (load generator and sink) to this file")
	fs.StringVar(&c.qgateProf, "qgate-cpuprofile", "", "write a CPU profile of qgate serve over each run's measured window to this file (run N > 1 adds .N); qgate then serves its profiler on a loopback port (QGATE_DEBUG_ADDR)")
	fs.BoolVar(&c.keep, "keep", false, "keep each run's temp dir (logs, data) and print its path")
	fs.BoolVar(&c.failOnMiss, "fail-on-miss", false, "exit 3 when a median misses its target")
}

func (c *deliverCommon) storeList() ([]bool, error) {
	var out []bool
	for s := range strings.SplitSeq(c.stores, ",") {
		switch strings.TrimSpace(s) {
		case "sqlite":
			out = append(out, false)
		case "postgres", "pg":
			out = append(out, true)
		case "both":
			out = append(out, false, true)
		default:
			return nil, fmt.Errorf("-store: %q is not sqlite, postgres or both", s)
		}
	}
	return out, nil
}

// scenarioRun is one run of a scenario on a fresh stack.
type scenarioRun func(ctx context.Context, st *stack, run int) (*result, error)

// runScenario parses nothing: it runs fn c.runs times per store, each on a fresh stack, prints
// every run's line and then the medians.
func runScenario(ctx context.Context, name string, c deliverCommon, env []string, fn scenarioRun, stdout, stderr io.Writer) (int, error) {
	if c.runs < 1 || c.runs > 20 {
		return 2, fmt.Errorf("-runs must be 1 to 20")
	}
	stores, err := c.storeList()
	if err != nil {
		return 2, err
	}
	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			return 1, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 1, err
		}
		defer pprof.StopCPUProfile()
	}
	bindir, err := os.MkdirTemp("", "qbench-bin-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(bindir)
	bin, err := buildQgate(ctx, c.qgate, bindir, stderr)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(stdout, "# %s: load average %s at start; %d CPUs, GOMAXPROCS %d, %s/%s, %s\n", name, loadAvg(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	var medians []*result
	for _, pg := range stores {
		var runs []*result
		for r := 1; r <= c.runs; r++ {
			res, err := runOnStack(ctx, name, c, bin, pg, r, len(stores) > 1, env, fn, stderr)
			if err != nil {
				return 1, err
			}
			res.text = strings.TrimSpace(res.text + " load=" + loadAvg())
			fmt.Fprintf(stdout, "run=%d/%d %s\n", r, c.runs, res)
			runs = append(runs, res)
			if err := pause(ctx, time.Second); err != nil {
				return 1, err
			}
		}
		medians = append(medians, medianResult(runs))
	}
	fmt.Fprintf(stdout, "# median of %d run(s); load average %s at the end\n", c.runs, loadAvg())
	missed := false
	for _, m := range medians {
		missed = missed || !m.pass()
		fmt.Fprintln(stdout, m)
	}
	if missed && c.failOnMiss {
		return 3, fmt.Errorf("a target was missed")
	}
	return 0, nil
}

// runOnStack runs fn once (run r of c.runs) on a fresh stack with store pg, then stops the
// stack and removes its temp dir (unless -keep).
func runOnStack(ctx context.Context, name string, c deliverCommon, bin string, pg bool, r int, manyStores bool, env []string, fn scenarioRun, stderr io.Writer) (*result, error) {
	dir, err := os.MkdirTemp("", "qbench-"+name+"-")
	if err != nil {
		return nil, err
	}
	prof := ""
	if c.qgateProf != "" {
		prof = c.qgateProf
		if r > 1 || manyStores {
			prof = fmt.Sprintf("%s.%s.%d", c.qgateProf, map[bool]string{false: "sqlite", true: "postgres"}[pg], r)
		}
	}
	st, err := startStack(ctx, stackConfig{bin: bin, dir: dir, retention: c.retention, postgres: pg, pgURL: c.pgURL, env: env, cpuprofile: prof})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	fmt.Fprintf(stderr, "qbench: %s run %d/%d store=%s qgate pid %d, broker pid %d, dir %s\n", name, r, c.runs, st.storeName(), st.serve.cmd.Process.Pid, st.broker.cmd.Process.Pid, dir)
	res, err := fn(ctx, st, r)
	if err == nil {
		err = st.died()
	}
	if err != nil {
		fmt.Fprintf(stderr, "qbench: qgate log tail:\n%s\n", st.serve.tail(20))
	}
	st.stop()
	if c.keep {
		fmt.Fprintf(stderr, "qbench: kept %s\n", dir)
	} else {
		os.RemoveAll(dir)
	}
	return res, err
}

// ---- deliver ----

// deliverOpts are qbench deliver's knobs (also used by qbench peer).
type deliverOpts struct {
	dests, perMin, lift, batch, conns int
	outstanding                       int64
	warmup, window                    time.Duration
	target                            float64
}

func (o *deliverOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.dests, "destinations", 100, "destinations, one audience each; profile i is in audience i % destinations, so it fans out to exactly one")
	fs.IntVar(&o.perMin, "rate-per-min", 3000, "rateLimitPerMinute of every destination, through the operator API (qgate allows at most 3000)")
	fs.IntVar(&o.lift, "lift-rate", 0, "if > 0, then write this rateLimitPerMinute straight into the store after creating the destinations, bypassing the API's 3000 cap (benchmark only: shows what bounds the pipeline when the limiter does not)")
	fs.IntVar(&o.batch, "batch", 100, "profiles per ingest request")
	fs.IntVar(&o.conns, "conns", 4, "ingest connections")
	fs.Int64Var(&o.outstanding, "outstanding", 20000, "keep at most this many profiles accepted but not yet arrived at the sink (keeps the pipeline full without building a backlog that would park)")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "warm-up, not measured")
	fs.DurationVar(&o.window, "duration", 10*time.Second, "measured window")
	fs.Float64Var(&o.target, "target", 10000, "target delivered/s")
}

func (o deliverOpts) valid() error {
	if o.dests < 1 || o.dests > 1000 || o.batch < 1 || o.batch > 500 || o.conns < 1 || o.window < time.Second {
		return fmt.Errorf("bad flags: -destinations 1..1000, -batch 1..500, -conns >= 1, -duration >= 1s")
	}
	return nil
}

func cmdDeliver(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	var c deliverCommon
	var o deliverOpts
	fs := flag.NewFlagSet("qbench deliver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, 64<<20)
	o.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	if err := o.valid(); err != nil {
		return 2, err
	}
	return runScenario(ctx, "deliver", c, nil, o.run(stderr), stdout, stderr)
}

// run is one deliver run on st: destinations on a sink in this process, ingest held to
// o.outstanding profiles in flight, arrivals counted over the window.
func (o deliverOpts) run(stderr io.Writer) scenarioRun {
	limitText := fmt.Sprintf("rate_limit=%d/min", o.perMin)
	if o.lift > 0 {
		limitText = fmt.Sprintf("rate_limit=%d/min(lifted-in-store)", o.lift)
	}
	return func(ctx context.Context, st *stack, run int) (*result, error) {
		sink, err := bench.StartSink(bench.SinkOptions{DedupKeys: true})
		if err != nil {
			return nil, err
		}
		defer sink.Close()
		ids, err := st.createDestinations(ctx, sink, o.dests, o.perMin)
		if err != nil {
			return nil, err
		}
		if o.lift > 0 {
			if err := st.liftRateLimit(ctx, ids, o.lift); err != nil {
				return nil, err
			}
		}
		if !sleepCtx(ctx, 2*time.Second) { // the registry refresh (1 s) sees every destination
			return nil, ctx.Err()
		}
		f := newFeeder(st.base, st.ingestKey, o.batch, o.dests, o.conns)
		label := fmt.Sprintf("deliver store=%s destinations=%d %s batch=%d conns=%d", st.storeName(), o.dests, limitText, o.batch, o.conns)
		res, err := o.measure(ctx, f, sink, st.cpuSampler(), st.profileQgate, label, stderr)
		if err != nil {
			return nil, err
		}
		parked, _ := st.metric(ctx, "qgate_deliveries_parked_total", "")
		res.set("parked", parked, 0)
		if o.lift == 0 {
			res.text += fmt.Sprintf(" limiter_cap_per_s=%d", o.dests*o.perMin/60)
		}
		return res, nil
	}
}

// measure feeds f (closed loop, at most o.outstanding profiles taken and not yet at the sink)
// and counts arrivals at sink over the window. cpu[0] is the process whose CPU per delivery is
// reported; profile (may be nil) profiles it over the window.
func (o deliverOpts) measure(ctx context.Context, f *feeder, sink *bench.Sink, cpu cpuSampler, profile func(context.Context, time.Duration) <-chan error, label string, stderr io.Writer) (*result, error) {
	fctx, stopFeed := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.run(fctx, o.conns, 0, func() bool { return f.accepted.Load()-sink.Delivered() < o.outstanding })
	}()
	defer func() { stopFeed(); wg.Wait() }()
	if !sleepCtx(ctx, o.warmup) {
		return nil, ctx.Err()
	}
	d0, a0, c0, t0 := sink.Delivered(), f.accepted.Load(), cpu.sample(), time.Now()
	n0 := sink.Counts().Conns
	profDone := noProfile(ctx, o.window)
	if profile != nil {
		profDone = profile(ctx, o.window)
	}
	if !sleepCtx(ctx, o.window) {
		return nil, ctx.Err()
	}
	if err := <-profDone; err != nil {
		return nil, err
	}
	d1, a1, c1, t1 := sink.Delivered(), f.accepted.Load(), cpu.sample(), time.Now()
	n1 := sink.Counts().Conns
	stopFeed()
	wg.Wait()
	wall := t1.Sub(t0)
	counts := sink.Counts()
	res := newResult(label)
	res.set("delivered_per_s", float64(d1-d0)/wall.Seconds(), 0)
	res.set("ingested_per_s", float64(a1-a0)/wall.Seconds(), 0)
	res.set("outstanding_end", float64(a1-d1), 0)
	res.set("duplicates", float64(counts.Duplicates), 0)
	res.set("sink_new_conns_per_s", float64(n1-n0)/wall.Seconds(), 0) // target → sink TCP connections opened
	res.set("ingest_errors", float64(f.errors.Load()), 0)
	if c0[0] >= 0 && c1[0] >= 0 && d1 > d0 {
		// The target's CPU per delivered profile: steadier than the rate on a shared machine.
		res.set(cpu[0].name+"_cpu_us_per_delivery", float64((c1[0]-c0[0]).Microseconds())/float64(d1-d0), 0)
	}
	res.judge, res.target = "delivered_per_s", o.target
	res.text = "cpu_cores=" + cpu.cores(c0, c1, wall)
	if e := f.errors.Load(); e > 0 {
		fmt.Fprintf(stderr, "qbench: %d failed ingest requests, e.g.:\n  %s\n", e, strings.Join(f.errorSamples(), "\n  "))
	}
	return res, nil
}

// noProfile is profileQgate without a profiler: done at once.
func noProfile(context.Context, time.Duration) <-chan error {
	done := make(chan error, 1)
	done <- nil
	return done
}

// ---- latency ----

// latencyOpts are qbench latency's knobs (also used by qbench peer).
type latencyOpts struct {
	dests, perMin, batch, conns int
	rate                        float64
	warmup, window, grace       time.Duration
	target                      float64
}

func (o *latencyOpts) register(fs *flag.FlagSet) {
	fs.IntVar(&o.dests, "destinations", 100, "destinations, one audience each; profile i is in audience i % destinations")
	fs.IntVar(&o.perMin, "rate-per-min", 3000, "rateLimitPerMinute of every destination")
	fs.Float64Var(&o.rate, "rate", 2000, "profiles per second, open loop (requests start on schedule, whatever the answers)")
	fs.IntVar(&o.batch, "batch", 1, "profiles per ingest request")
	fs.IntVar(&o.conns, "conns", 64, "ingest connections (enough that requests go out on schedule)")
	fs.DurationVar(&o.warmup, "warmup", 5*time.Second, "warm-up, not measured")
	fs.DurationVar(&o.window, "duration", 15*time.Second, "measured window: profiles acknowledged in it count")
	fs.DurationVar(&o.grace, "grace", 30*time.Second, "after the last request, wait this long at most for the window's profiles to arrive")
	fs.Float64Var(&o.target, "target-p99-ms", 30, "target p99 in ms")
}

func (o latencyOpts) valid() error {
	if o.rate <= 0 || o.batch < 1 || o.batch > 500 || o.conns < 1 || o.window < time.Second || o.dests < 1 {
		return fmt.Errorf("bad flags")
	}
	return nil
}

// profiles is how many profiles a run sends (whole requests).
func (o latencyOpts) profiles() int {
	total := int((o.warmup+o.window).Seconds()*o.rate) + o.batch
	return (total + o.batch - 1) / o.batch * o.batch
}

func cmdLatency(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	var c deliverCommon
	var o latencyOpts
	fs := flag.NewFlagSet("qbench latency", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, 64<<20)
	o.register(fs)
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	if err := o.valid(); err != nil {
		return 2, err
	}
	return runScenario(ctx, "latency", c, nil, o.run(stderr), stdout, stderr)
}

// run is one latency run on st: latency from qgate's acknowledgement to the sink.
func (o latencyOpts) run(stderr io.Writer) scenarioRun {
	return func(ctx context.Context, st *stack, run int) (*result, error) {
		sink, err := bench.StartSink(bench.SinkOptions{Track: o.profiles()})
		if err != nil {
			return nil, err
		}
		defer sink.Close()
		if _, err := st.createDestinations(ctx, sink, o.dests, o.perMin); err != nil {
			return nil, err
		}
		if !sleepCtx(ctx, 2*time.Second) {
			return nil, ctx.Err()
		}
		f := newFeeder(st.base, st.ingestKey, o.batch, o.dests, o.conns)
		label := fmt.Sprintf("latency store=%s destinations=%d rate_limit=%d/min rate=%g/s batch=%d", st.storeName(), o.dests, o.perMin, o.rate, o.batch)
		return o.measure(ctx, f, sink, st.cpuSampler(), st.profileQgate, false, label, stderr)
	}
}

// measure drives f open loop at o.rate and measures, per profile sent in the window, the time
// to its first arrival at sink (tracking o.profiles()): from its acknowledgement, or from the
// moment its request was sent when fromSend (the peer answers only after delivering, so for it
// the whole request is the pipe). cpu[0] is the process whose CPU per profile is reported.
func (o latencyOpts) measure(ctx context.Context, f *feeder, sink *bench.Sink, cpu cpuSampler, profile func(context.Context, time.Duration) <-chan error, fromSend bool, label string, stderr io.Writer) (*result, error) {
	batch, conns, window := o.batch, o.conns, o.window
	total := o.profiles()
	reqs := total / batch
	from := make([]atomic.Int64, total) // profile → UnixNano of its 202 (or its request's start)
	reqLat := make([][]time.Duration, conns)
	var late atomic.Int64 // requests that started more than 5 ms behind schedule
	var next atomic.Int64
	interval := time.Duration(float64(time.Second) * float64(batch) / o.rate)
	start := time.Now().Add(100 * time.Millisecond)
	t0 := start.Add(o.warmup)
	t1 := t0.Add(window)
	var c0, c1 []time.Duration
	var w0, w1 time.Time
	cpuDone := make(chan struct{})
	go func() {
		defer close(cpuDone)
		if sleepCtx(ctx, time.Until(t0)) {
			c0, w0 = cpu.sample(), time.Now()
			prof := noProfile(ctx, window)
			if profile != nil {
				prof = profile(ctx, window)
			}
			if sleepCtx(ctx, time.Until(t1)) {
				c1, w1 = cpu.sample(), time.Now()
			}
			if err := <-prof; err != nil {
				fmt.Fprintf(stderr, "qbench: %v\n", err)
			}
		}
	}()
	var wg sync.WaitGroup
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var body []byte
			var buf bytes.Buffer
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(reqs) {
					return
				}
				at := start.Add(time.Duration(i) * interval)
				if d := time.Until(at); d > 0 {
					if !sleepCtx(ctx, d) {
						return
					}
				} else if d < -5*time.Millisecond {
					late.Add(1)
				}
				first := int(i) * batch
				body = f.body(body[:0], first, batch)
				sent := time.Now()
				status, err := f.post(ctx, body, &buf)
				ack := time.Now()
				if err == nil {
					err = f.check(status, buf.Bytes(), batch)
				}
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					f.errors.Add(1)
					f.mu.Lock()
					if len(f.samples) < 5 {
						f.samples = append(f.samples, err.Error())
					}
					f.mu.Unlock()
					continue
				}
				mark := ack
				if fromSend {
					mark = sent
				}
				for p := first; p < first+batch; p++ {
					from[p].Store(mark.UnixNano())
				}
				if !ack.Before(t0) && !ack.After(t1) {
					reqLat[w] = append(reqLat[w], ack.Sub(sent))
				}
			}
		}()
	}
	wg.Wait()
	<-cpuDone
	if c1 == nil {
		return nil, ctx.Err()
	}
	// Wait for the window's profiles to arrive (bounded).
	var inWindow []int
	for p := range total {
		a := from[p].Load()
		if a != 0 && a >= t0.UnixNano() && a <= t1.UnixNano() {
			inWindow = append(inWindow, p)
		}
	}
	deadline := time.Now().Add(o.grace)
	missing := len(inWindow)
	for time.Now().Before(deadline) {
		missing = 0
		for _, p := range inWindow {
			if _, ok := sink.FirstArrival(p); !ok {
				missing++
			}
		}
		if missing == 0 || !sleepCtx(ctx, 100*time.Millisecond) {
			break
		}
	}
	var lat, neg []time.Duration
	for _, p := range inWindow {
		at, ok := sink.FirstArrival(p)
		if !ok {
			continue
		}
		d := at.Sub(time.Unix(0, from[p].Load()))
		if d < 0 { // arrived before qbench had read the 202: count as 0
			neg = append(neg, d)
			d = 0
		}
		lat = append(lat, d)
	}
	slices.Sort(lat)
	var rl []time.Duration
	for _, l := range reqLat {
		rl = append(rl, l...)
	}
	slices.Sort(rl)
	res := newResult(label)
	res.set("p50_ms", ms(quantile(lat, 0.50)), 1)
	res.set("p99_ms", ms(quantile(lat, 0.99)), 1)
	res.set("max_ms", ms(quantile(lat, 1)), 1)
	res.set("profiles", float64(len(inWindow)), 0)
	res.set("missing", float64(missing), 0)
	res.set("achieved_per_s", float64(len(inWindow))/window.Seconds(), 0)
	res.set("ingest_p50_ms", ms(quantile(rl, 0.50)), 1)
	res.set("ingest_p99_ms", ms(quantile(rl, 0.99)), 1)
	res.set("late_requests", float64(late.Load()), 0)
	res.set("ingest_errors", float64(f.errors.Load()), 0)
	if c0[0] >= 0 && c1[0] >= 0 && len(inWindow) > 0 {
		res.set(cpu[0].name+"_cpu_us_per_profile", float64((c1[0]-c0[0]).Microseconds())/float64(len(inWindow)), 0)
	}
	res.judge, res.target, res.atMost = "p99_ms", o.target, true
	res.text = "cpu_cores=" + cpu.cores(c0, c1, w1.Sub(w0))
	if len(neg) > 0 {
		res.text += fmt.Sprintf(" arrived_before_ack=%d", len(neg))
	}
	if e := f.errors.Load(); e > 0 {
		fmt.Fprintf(stderr, "qbench: %d failed ingest requests, e.g.:\n  %s\n", e, strings.Join(f.errorSamples(), "\n  "))
	}
	if missing > 0 {
		fmt.Fprintf(stderr, "qbench: %d of %d window profiles had not arrived %s after the last request\n", missing, len(inWindow), o.grace)
		res.set("p99_ms", max(res.vals["p99_ms"], float64(1e9)), 1) // an incomplete window cannot pass
	}
	return res, nil
}

// quantile is the q-quantile (nearest rank) of sorted v.
func quantile(v []time.Duration, q float64) time.Duration {
	if len(v) == 0 {
		return 0
	}
	i := int(q*float64(len(v))+0.5) - 1
	return v[min(max(i, 0), len(v)-1)]
}

// deliveryCommands are the subcommands besides ingest.
var deliveryCommands = map[string]func(context.Context, []string, io.Writer, io.Writer) (int, error){
	"deliver": cmdDeliver,
	"latency": cmdLatency,
	"backlog": cmdBacklog,
	"peer":    cmdPeer,
	"idle":    cmdIdle,
}
