//go:build unix

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/qgate/qgate/bench"
)

// ---- peer ----
//
// qbench peer measures qgate against the Benthos peer of issue #12 (bench/peer: Benthos core
// http_server → http_client, no Kafka, no validation, no store) with the same load generator
// and the same sink, peer and qgate back to back in each round, and prints the ratios.

// peerOpts are qbench peer's knobs.
type peerOpts struct {
	c          deliverCommon
	peerBin    string
	deliver    deliverOpts
	peerConns  int // peer ingest connections at batch 100 in the deliver figure
	latency    latencyOpts
	latStores  string
	ingestWarm time.Duration
	ingestWin  time.Duration
	conns1     int
	conns100   int
	// targets (the issue's)
	deliverRatio, latencyRatio, latencyMaxMS, ingestRatio float64
	// idle
	idle idleOpts
	// figures selects which of the figures a round runs (-figures).
	figures map[string]bool
}

// peerFigures are the figures of a round, in the order they run.
var peerFigures = []string{"deliver", "latency", "ingest", "idle"}

// parseFigures reads -figures: a comma list of peerFigures, or "all".
func parseFigures(list string) (map[string]bool, error) {
	out := map[string]bool{}
	for f := range strings.SplitSeq(list, ",") {
		f = strings.TrimSpace(f)
		if f == "all" {
			for _, g := range peerFigures {
				out[g] = true
			}
			continue
		}
		if !slices.Contains(peerFigures, f) {
			return nil, fmt.Errorf("-figures: %q is not one of %s or all", f, strings.Join(peerFigures, ", "))
		}
		out[f] = true
	}
	return out, nil
}

func cmdPeer(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	var o peerOpts
	fs := flag.NewFlagSet("qbench peer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o.c.register(fs, 64<<20)
	fs.StringVar(&o.peerBin, "peer", "", "Benthos peer binary (default: go build bench/peer into .cache/peer/benthos of the qgate checkout)")
	fs.IntVar(&o.deliver.dests, "destinations", 400, "qgate destinations at -rate-per-min each (the limiters' cap must be above the peer's rate)")
	fs.IntVar(&o.deliver.perMin, "rate-per-min", 3000, "rateLimitPerMinute of every destination (qgate allows at most 3000)")
	fs.IntVar(&o.deliver.conns, "deliver-conns", 4, "qgate ingest connections in the deliver figure (batch 100, held to -outstanding)")
	fs.Int64Var(&o.deliver.outstanding, "outstanding", 20000, "qgate deliver: at most this many profiles accepted and not yet at the sink")
	fs.IntVar(&o.peerConns, "peer-conns", 16, "peer ingest connections in the deliver figure (batch 100, closed loop: it answers after delivering)")
	fs.DurationVar(&o.deliver.warmup, "deliver-warmup", 5*time.Second, "deliver figure warm-up")
	fs.DurationVar(&o.deliver.window, "deliver-duration", 10*time.Second, "deliver figure window")
	fs.Float64Var(&o.latency.rate, "rate", 2000, "latency figure: profiles per second, batch 1, open loop")
	fs.IntVar(&o.latency.conns, "latency-conns", 64, "latency figure: connections")
	fs.DurationVar(&o.latency.warmup, "latency-warmup", 5*time.Second, "latency figure warm-up")
	fs.DurationVar(&o.latency.window, "latency-duration", 15*time.Second, "latency figure window")
	fs.StringVar(&o.latStores, "latency-store", "sqlite", "stores for qgate's latency figure (sqlite, postgres or both)")
	fs.DurationVar(&o.ingestWarm, "ingest-warmup", 3*time.Second, "ingest figures warm-up")
	fs.DurationVar(&o.ingestWin, "ingest-duration", 10*time.Second, "ingest figures window")
	fs.IntVar(&o.conns1, "conns1", 64, "ingest connections at batch 1 (qgate and peer)")
	fs.IntVar(&o.conns100, "conns100", 12, "ingest connections at batch 100 (qgate and peer)")
	fs.Float64Var(&o.deliverRatio, "target-deliver-ratio", 1.0, "target qgate/peer delivered/s")
	fs.Float64Var(&o.latencyRatio, "target-latency-ratio", 1.5, "target qgate/peer e2e p99 (at most)")
	fs.Float64Var(&o.latencyMaxMS, "target-latency-ms", 50, "target qgate e2e p99 in ms (at most)")
	fs.Float64Var(&o.ingestRatio, "target-ingest-ratio", 1.0, "target qgate/peer ingest profiles/s")
	fs.DurationVar(&o.idle.settle, "idle-settle", 5*time.Second, "idle figure: wait this long after qgate is ready")
	fs.DurationVar(&o.idle.window, "idle-duration", 10*time.Second, "idle figure: window (0: no idle figure)")
	fs.Float64Var(&o.idle.target, "target-idle-cores", 0.02, "target idle CPU of qgate serve (embedded broker) in cores")
	figures := fs.String("figures", "all", "which figures each round runs: a comma list of deliver, latency, ingest, idle (e.g. -figures ingest: a round of about a minute)")
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	var err error
	if o.figures, err = parseFigures(*figures); err != nil {
		return 2, err
	}
	o.deliver.batch, o.deliver.target = 100, 0
	o.latency.dests, o.latency.perMin, o.latency.batch, o.latency.grace, o.latency.target = o.deliver.dests, o.deliver.perMin, 1, 30*time.Second, o.latencyMaxMS
	if err := o.deliver.valid(); err != nil {
		return 2, err
	}
	if err := o.latency.valid(); err != nil {
		return 2, err
	}
	if o.c.runs < 1 || o.c.runs > 20 || o.peerConns < 1 || o.conns1 < 1 || o.conns100 < 1 || o.ingestWin < time.Second {
		return 2, fmt.Errorf("bad flags: -runs 1..20, connections >= 1, -ingest-duration >= 1s")
	}
	stores, err := o.c.storeList()
	if err != nil {
		return 2, err
	}
	lat := deliverCommon{stores: o.latStores}
	latStores, err := lat.storeList()
	if err != nil {
		return 2, fmt.Errorf("-latency-store: %w", err)
	}

	bindir, err := os.MkdirTemp("", "qbench-bin-")
	if err != nil {
		return 1, err
	}
	defer os.RemoveAll(bindir)
	bin, err := buildQgate(ctx, o.c.qgate, bindir, stderr)
	if err != nil {
		return 1, err
	}
	peerBin, err := buildPeer(ctx, o.peerBin, stderr)
	if err != nil {
		return 1, err
	}
	peerDir, err := peerConfigDir()
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(stdout, "# peer: load average %s at start; peer %s; qgate %s\n", loadAvg(), peerBin, bin)

	var ratios [][]*result // per round
	var invalid []string
	for r := 1; r <= o.c.runs; r++ {
		line := func(res *result) {
			res.text = strings.TrimSpace(res.text + " load=" + loadAvg())
			fmt.Fprintf(stdout, "run=%d/%d %s\n", r, o.c.runs, res)
			for _, k := range []string{"ingest_errors", "errors", "missing"} {
				if res.vals[k] > 0 {
					invalid = append(invalid, fmt.Sprintf("run %d: %s: %s=%g", r, res.label, k, res.vals[k]))
				}
			}
		}
		var round []*result

		// delivered/s, batch 100: the peer, then qgate on each store.
		if o.figures["deliver"] {
			pd, err := o.peerDeliver(ctx, peerBin, peerDir, stderr)
			if err != nil {
				return 1, fmt.Errorf("peer deliver: %w", err)
			}
			line(pd)
			for _, pg := range stores {
				qd, err := runOnStack(ctx, "peer-deliver", o.c, bin, pg, r, len(stores) > 1, nil, o.deliver.run(stderr), stderr)
				if err != nil {
					return 1, fmt.Errorf("qgate deliver: %w", err)
				}
				qd.judge = "" // judged as a ratio below
				line(qd)
				round = append(round, ratio(fmt.Sprintf("ratio delivered/s qgate(%s,%d destinations)/peer batch=100", storeName(pg), o.deliver.dests),
					qd.vals["delivered_per_s"], pd.vals["delivered_per_s"], o.deliverRatio, false, 0))
			}
		}

		// e2e p99 at a fixed rate, batch 1.
		if o.figures["latency"] {
			pl, err := o.peerLatency(ctx, peerBin, peerDir, stderr)
			if err != nil {
				return 1, fmt.Errorf("peer latency: %w", err)
			}
			line(pl)
			for _, pg := range latStores {
				ql, err := runOnStack(ctx, "peer-latency", o.c, bin, pg, r, len(latStores) > 1, nil, o.latency.run(stderr), stderr)
				if err != nil {
					return 1, fmt.Errorf("qgate latency: %w", err)
				}
				ql.judge = ""
				line(ql)
				round = append(round,
					ratio(fmt.Sprintf("ratio e2e_p99 qgate(%s)/peer rate=%g/s batch=1", storeName(pg), o.latency.rate),
						ql.vals["p99_ms"], pl.vals["p99_ms"], o.latencyRatio, true, 2),
					ratio(fmt.Sprintf("qgate(%s) e2e_p99_ms rate=%g/s batch=1", storeName(pg), o.latency.rate),
						ql.vals["p99_ms"], 0, o.latencyMaxMS, true, 1))
			}
		}

		// ingest profiles/s at batch 1 and batch 100: the peer's ingest-drop, then qgate.
		if o.figures["ingest"] {
			pi, err := o.peerIngest(ctx, peerBin, peerDir, stderr)
			if err != nil {
				return 1, fmt.Errorf("peer ingest: %w", err)
			}
			for _, res := range pi {
				line(res)
			}
			var qi []*result
			if _, err := runOnStack(ctx, "peer-ingest", o.c, bin, stores[0], r, false, nil, func(ctx context.Context, st *stack, _ int) (*result, error) {
				var err error
				qi, err = o.qgateIngest(ctx, st)
				return newResult("ingest"), err
			}, stderr); err != nil {
				return 1, fmt.Errorf("qgate ingest: %w", err)
			}
			for i, res := range qi {
				line(res)
				round = append(round, ratio(fmt.Sprintf("ratio ingest profiles/s qgate/peer(ingest-drop) batch=%d", []int{1, 100}[i]),
					res.vals["profiles_per_s"], pi[i].vals["profiles_per_s"], o.ingestRatio, false, 0))
			}
		}

		// idle CPU of qgate serve with its embedded broker.
		if o.figures["idle"] && o.idle.window > 0 {
			id, err := o.idle.measure(ctx, bin, stderr)
			if err != nil {
				return 1, fmt.Errorf("idle: %w", err)
			}
			line(id)
			round = append(round, ratio("qgate idle_cores (serve, embedded broker)", id.vals["qgate_cores"], 0, o.idle.target, true, 3))
		}

		for _, res := range round {
			fmt.Fprintf(stdout, "run=%d/%d %s\n", r, o.c.runs, res)
		}
		ratios = append(ratios, round)
	}

	fmt.Fprintf(stdout, "# peer: median of %d round(s) (each ratio taken within its round); load average %s at the end\n", o.c.runs, loadAvg())
	missed := false
	for i := range ratios[0] {
		var runs []*result
		for _, round := range ratios {
			runs = append(runs, round[i])
		}
		m := medianResult(runs)
		missed = missed || !m.pass()
		fmt.Fprintln(stdout, m)
	}
	if len(invalid) > 0 {
		return 1, fmt.Errorf("requests failed or profiles went missing, so the figures are not valid:\n  %s", strings.Join(invalid, "\n  "))
	}
	if missed && o.c.failOnMiss {
		return 3, fmt.Errorf("a target was missed")
	}
	return 0, nil
}

func storeName(pg bool) string {
	if pg {
		return "postgres"
	}
	return "sqlite"
}

// ratio is one line of the target table: qgate's figure, the peer's (0: an absolute
// target, no peer) and their ratio judged against target (atMost: an upper bound).
func ratio(label string, qgate, peer, target float64, atMost bool, prec int) *result {
	res := newResult(label).set("qgate", qgate, max(prec, 1))
	if peer == 0 {
		res.judge = "qgate"
	} else {
		res.set("peer", peer, max(prec, 1)).set("ratio", qgate/peer, 2)
		res.judge = "ratio"
	}
	res.target, res.atMost = target, atMost
	return res
}

// ---- the peer process ----

// repoRoot is the directory of the qgate module's go.mod (qbench runs inside the checkout).
func repoRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", fmt.Errorf("qbench peer runs inside the qgate checkout (no go.mod here)")
	}
	return filepath.Dir(gomod), nil
}

// peerConfigDir is bench/peer of the checkout, where the peer's configurations are.
func peerConfigDir() (string, error) {
	root, err := repoRoot(context.Background())
	if err != nil {
		return "", err
	}
	return filepath.Join(root, "bench", "peer"), nil
}

// buildPeer returns bin, or builds bench/peer (its own module: Benthos never enters qgate's
// go.mod) into .cache/peer/benthos of the checkout. The first build downloads ~270 MB of
// modules from the Go module proxy; later ones are incremental.
func buildPeer(ctx context.Context, bin string, stderr io.Writer) (string, error) {
	if bin != "" {
		return bin, nil
	}
	root, err := repoRoot(ctx)
	if err != nil {
		return "", err
	}
	out := filepath.Join(root, ".cache", "peer", "benthos")
	fmt.Fprintf(stderr, "qbench: building the peer (bench/peer) into %s\n", out)
	bctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(bctx, "go", "build", "-o", out, ".")
	cmd.Dir = filepath.Join(root, "bench", "peer")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	cmd.Stdout, cmd.Stderr = stderr, stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build the peer: %w", err)
	}
	fmt.Fprintf(stderr, "qbench: peer built in %s\n", time.Since(start).Round(100*time.Millisecond))
	return out, nil
}

// peerProc is a running Benthos peer.
type peerProc struct {
	*proc
	base string
	dir  string
}

// startPeer runs the peer with config (a file of bench/peer) on a free loopback port, its
// deliveries going to sinkURL, and waits for its /ready.
func startPeer(ctx context.Context, bin, config, sinkURL string) (*peerProc, error) {
	dir, err := os.MkdirTemp("", "qbench-peer-")
	if err != nil {
		return nil, err
	}
	addr, err := freeAddr()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	env := append(os.Environ(), "PEER_ADDR="+addr)
	if sinkURL != "" {
		env = append(env, "SINK_URL="+sinkURL)
	}
	p, err := startProc("peer", bin, []string{"-c", config}, env, filepath.Join(dir, "peer.log"), nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	pp := &peerProc{proc: p, base: "http://" + addr, dir: dir}
	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, pp.base+"/ready", nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return pp, nil
			}
		}
		if p.exited() || time.Now().After(deadline) || ctx.Err() != nil {
			tail := p.tail(20)
			pp.stop()
			return nil, fmt.Errorf("peer (%s) not ready: %v\n%s", config, p.err, tail)
		}
		if err := pause(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

func (p *peerProc) stop() {
	p.proc.stop(10 * time.Second)
	os.RemoveAll(p.dir)
}

func (p *peerProc) cpuSampler() cpuSampler {
	return cpuSampler{{"peer", p.cpu}, {"qbench", selfCPU}}
}

// peerDeliver is the peer's delivered/s: batch 100 over -peer-conns connections, closed loop,
// arrivals at the sink over the window.
func (o peerOpts) peerDeliver(ctx context.Context, bin, dir string, stderr io.Writer) (*result, error) {
	sink, err := bench.StartSink(bench.SinkOptions{})
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	p, err := startPeer(ctx, bin, filepath.Join(dir, "http-to-http.yaml"), sink.EventURL("WF_peer"))
	if err != nil {
		return nil, err
	}
	defer p.stop()
	d := o.deliver
	d.conns, d.outstanding = o.peerConns, 1<<40 // the peer answers only once delivered
	f := newPeerFeeder(p.base, d.batch, d.dests, d.conns)
	res, err := d.measure(ctx, f, sink, p.cpuSampler(), nil, fmt.Sprintf("peer http_to_http deliver batch=%d conns=%d", d.batch, d.conns), stderr)
	if err == nil {
		res.judge = ""
		res.drop("outstanding_end") // the peer answers after delivering: nothing is outstanding
		res.drop("duplicates")      // it sends no Idempotency-Key
	}
	if err == nil && p.exited() {
		err = fmt.Errorf("the peer died:\n%s", p.tail(20))
	}
	return res, err
}

// peerLatency is the peer's end-to-end latency at the latency figure's rate: from sending a
// profile to its arrival at the sink (the peer answers after delivering, so no acknowledgement
// comes before the arrival; qgate's figure starts at its 202).
func (o peerOpts) peerLatency(ctx context.Context, bin, dir string, stderr io.Writer) (*result, error) {
	l := o.latency
	sink, err := bench.StartSink(bench.SinkOptions{Track: l.profiles()})
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	p, err := startPeer(ctx, bin, filepath.Join(dir, "http-to-http.yaml"), sink.EventURL("WF_peer"))
	if err != nil {
		return nil, err
	}
	defer p.stop()
	f := newPeerFeeder(p.base, l.batch, l.dests, l.conns)
	l.target = 0
	res, err := l.measure(ctx, f, sink, p.cpuSampler(), nil, true, fmt.Sprintf("peer http_to_http latency(send->arrival) rate=%g/s batch=%d", l.rate, l.batch), stderr)
	if err == nil {
		res.judge = ""
	}
	if err == nil && p.exited() {
		err = fmt.Errorf("the peer died:\n%s", p.tail(20))
	}
	return res, err
}

// peerIngest is the peer's ingest-drop profiles/s at batch 1 and batch 100, closed loop, with
// qbench ingest's load generator.
func (o peerOpts) peerIngest(ctx context.Context, bin, dir string, stderr io.Writer) ([]*result, error) {
	p, err := startPeer(ctx, bin, filepath.Join(dir, "ingest-drop.yaml"), "")
	if err != nil {
		return nil, err
	}
	defer p.stop()
	cpu := []bench.CPUReader{{Name: "peer", Read: p.cpu}, {Name: "qbench", Read: selfCPU}}
	var out []*result
	for _, sc := range []struct {
		batch, conns int
		bodies       [][]byte
	}{{1, o.conns1, bench.ArrayBodies(20000, 1)}, {100, o.conns100, bench.ArrayBodies(200, 100)}} {
		if err := pause(ctx, time.Second); err != nil {
			return nil, err
		}
		res := bench.Run(ctx, bench.Scenario{Name: "peer ingest-drop", URL: p.base + "/v1/profiles", Batch: sc.batch, Conns: sc.conns,
			Warmup: o.ingestWarm, Duration: o.ingestWin, CPU: cpu, Status: http.StatusOK, PeerAnswer: true}, sc.bodies)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		out = append(out, ingestResult(res))
		if res.Errors > 0 {
			fmt.Fprintf(stderr, "qbench: %d FAILED REQUESTS to the peer, e.g.:\n  %s\n", res.Errors, strings.Join(res.ErrorSamples, "\n  "))
		}
	}
	if p.exited() {
		return nil, fmt.Errorf("the peer died:\n%s", p.tail(20))
	}
	return out, nil
}

// qgateIngest is qbench ingest's batch-1 and batch-100 figures on st. With -qgate-cpuprofile
// FILE it profiles qgate over each window into FILE.batch1 and FILE.batch100.
func (o peerOpts) qgateIngest(ctx context.Context, st *stack) ([]*result, error) {
	cpu := []bench.CPUReader{{Name: "qgate", Read: st.serve.cpu}, {Name: "broker", Read: st.broker.cpu}, {Name: "qbench", Read: selfCPU}}
	var out []*result
	for _, sc := range []struct {
		batch, conns int
		bodies       [][]byte
	}{{1, o.conns1, bench.Bodies(20000, 1)}, {100, o.conns100, bench.Bodies(200, 100)}} {
		if err := pause(ctx, time.Second); err != nil {
			return nil, err
		}
		prof := st.profileQgateTo(ctx, o.ingestWarm, o.ingestWin, fmt.Sprintf("%s.batch%d", st.cfg.cpuprofile, sc.batch))
		res := bench.Run(ctx, bench.Scenario{Name: "qgate ingest", URL: st.base + "/v1/profiles", Key: st.ingestKey, Batch: sc.batch, Conns: sc.conns,
			Warmup: o.ingestWarm, Duration: o.ingestWin, CPU: cpu}, sc.bodies)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if err := <-prof; err != nil {
			return nil, err
		}
		out = append(out, ingestResult(res))
	}
	return out, nil
}

// ingestResult is a closed-loop ingest figure as a result line.
func ingestResult(r *bench.Result) *result {
	res := newResult(fmt.Sprintf("%s batch=%d conns=%d", r.Name, r.Batch, r.Conns))
	res.set("profiles_per_s", r.Rate(), 0)
	res.set("p50_ms", ms(r.Quantile(0.50)), 1)
	res.set("p99_ms", ms(r.Quantile(0.99)), 1)
	res.set("errors", float64(r.Errors), 0)
	var cpu []string
	for i, c := range r.Scenario.CPU {
		if r.CPU[i] >= 0 {
			cpu = append(cpu, fmt.Sprintf("%s:%.2f", c.Name, r.CPU[i]))
		}
	}
	res.text = "cpu_cores=" + strings.Join(cpu, ",")
	if len(r.ErrorSamples) > 0 {
		res.text += fmt.Sprintf(" first_error=%q", r.ErrorSamples[0])
	}
	return res
}
