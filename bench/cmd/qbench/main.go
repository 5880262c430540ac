//go:build unix

// Command qbench measures qgate. `qbench ingest` starts `qgate broker` (in-memory kfake) and
// `qgate serve` as separate processes on loopback, drives POST /v1/profiles from this process
// at batch 1 and batch 100, measures a decode-only floor in the same run, and prints one summary
// line per figure (and, with -runs N, the median of the N runs at the end).
//
//	go run ./bench/cmd/qbench ingest -runs 3
package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/qgate/qgate/bench"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

const usage = `usage: qbench ingest|deliver|latency|backlog|peer|idle [flags]

Starts qgate broker and qgate serve as processes on 127.0.0.1 and measures:
  ingest   POST /v1/profiles at batch 1 and batch 100, and a decode-only floor
  deliver  delivered/s across 100 destinations to a sink in this process (-store sqlite|postgres|both)
  latency  ingest acknowledgement → arrival at the sink, at a fixed rate (2,000 profiles/s)
  backlog  qgate's RSS while 1,000,000 deliveries for a down destination are parked
  peer     the Benthos peer (bench/peer) and qgate back to back: issue #12's ratios
  idle     the CPU of an idle qgate serve (embedded broker), from /proc
Run 'qbench <command> -h' for the flags.
`

type options struct {
	qgate          string
	runs           int
	warmup, window time.Duration
	conns1         int
	conns100       int
	retention      int64
	target1        float64
	target100      float64
	targetRatio    float64
	failOnMiss     bool
	cpuprofile     string
	keepDir        bool
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		if cmd, ok := deliveryCommands[args[0]]; ok {
			ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			code, err := cmd(ctx, args[1:], stdout, stderr)
			if err != nil {
				fmt.Fprintf(stderr, "qbench %s: %v\n", args[0], err)
				if code == 0 {
					code = 1
				}
			}
			return code
		}
	}
	if len(args) == 0 || args[0] != "ingest" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var o options
	fs := flag.NewFlagSet("qbench ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.qgate, "qgate", "", "qgate binary to run (default: go build ./cmd/qgate into a temp dir)")
	fs.IntVar(&o.runs, "runs", 1, "repeat the whole set this many times and print the median per figure (1 to 20)")
	fs.DurationVar(&o.warmup, "warmup", 3*time.Second, "warm-up per scenario, not measured")
	fs.DurationVar(&o.window, "duration", 10*time.Second, "measured window per scenario")
	fs.IntVar(&o.conns1, "conns1", 64, "connections at batch 1")
	fs.IntVar(&o.conns100, "conns100", 12, "connections at batch 100 (qgate and floor)")
	fs.Int64Var(&o.retention, "broker-retention", 32<<20, "bytes kept per partition by the in-memory broker (bounds its memory over long runs)")
	fs.Float64Var(&o.target1, "target1", 12000, "target profiles/s at batch 1")
	fs.Float64Var(&o.target100, "target100", 50000, "target profiles/s at batch 100")
	fs.Float64Var(&o.targetRatio, "target-ratio", 0.6, "target qgate/floor ratio at batch 100")
	fs.BoolVar(&o.failOnMiss, "fail-on-miss", false, "exit 3 when a median misses its target")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of qbench itself (load generator and floor) to this file")
	fs.BoolVar(&o.keepDir, "keep", false, "keep the temp dir (binary, logs, data) and print its path")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	switch {
	case o.runs < 1 || o.runs > 20:
		fmt.Fprintln(stderr, "qbench: -runs must be 1 to 20")
		return 2
	case o.warmup < 0 || o.window < time.Second || o.window > 10*time.Minute:
		fmt.Fprintln(stderr, "qbench: -duration must be 1s to 10m and -warmup not negative")
		return 2
	case o.conns1 < 1 || o.conns1 > 1024 || o.conns100 < 1 || o.conns100 > 1024:
		fmt.Fprintln(stderr, "qbench: connections must be 1 to 1024")
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	code, err := ingest(ctx, o, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "qbench: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// figure is one line of output: a scenario's result in one run.
type figure struct {
	label  string // "ingest batch=1 conns=64"
	rate   float64
	p50    time.Duration
	p99    time.Duration
	errors int64
	ratio  float64 // floor only: qgate batch-100 rate / floor rate in the same run
	cpu    string
	target string // "target>=50000"
	pass   bool
}

func ingest(ctx context.Context, o options, stdout, stderr io.Writer) (int, error) {
	dir, err := os.MkdirTemp("", "qbench-")
	if err != nil {
		return 1, err
	}
	if o.keepDir {
		defer fmt.Fprintf(stderr, "qbench: kept %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if o.cpuprofile != "" {
		f, err := os.Create(o.cpuprofile)
		if err != nil {
			return 1, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 1, err
		}
		defer pprof.StopCPUProfile()
	}

	bin := o.qgate
	if bin == "" {
		bin = filepath.Join(dir, "qgate")
		fmt.Fprintln(stderr, "qbench: building qgate")
		bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		cmd := exec.CommandContext(bctx, "go", "build", "-o", bin, "github.com/qgate/qgate/cmd/qgate")
		cmd.Stdout, cmd.Stderr = stderr, stderr
		err := cmd.Run()
		cancel()
		if err != nil {
			return 1, fmt.Errorf("build qgate: %w", err)
		}
	}

	broker, brokerAddr, err := startBroker(ctx, bin, dir, o.retention)
	if err != nil {
		return 1, err
	}
	defer broker.stop(10 * time.Second)
	fmt.Fprintf(stderr, "qbench: broker %s (pid %d, in memory)\n", brokerAddr, broker.cmd.Process.Pid)

	addr, err := freeAddr()
	if err != nil {
		return 1, err
	}
	adminKey := randomHex(16) // 32 characters
	if err := os.Mkdir(filepath.Join(dir, "data"), 0o700); err != nil {
		return 1, err
	}
	env := append(withoutQGATE(os.Environ()),
		"QGATE_ADDR="+addr,
		"QGATE_KAFKA_BROKERS="+brokerAddr,
		"QGATE_DATA_DIR="+filepath.Join(dir, "data"),
		"QGATE_ADMIN_KEY="+adminKey,
		"QGATE_SECRET_KEY="+randomHex(32),
		"QGATE_LOG_LEVEL=warn",
	)
	serve, err := startProc("qgate", bin, []string{"serve"}, env, filepath.Join(dir, "qgate.log"), nil)
	if err != nil {
		return 1, err
	}
	defer serve.stop(30 * time.Second) // deferred after the broker's: runs first
	base := "http://" + addr
	if err := waitReady(ctx, base, serve); err != nil {
		return 1, err
	}
	key, err := createKey(ctx, base, adminKey)
	if err != nil {
		return 1, err
	}
	fmt.Fprintf(stderr, "qbench: qgate %s ready (pid %d); GOMAXPROCS=%d NumCPU=%d\n", base, serve.cmd.Process.Pid, runtime.GOMAXPROCS(0), runtime.NumCPU())

	floor, err := bench.StartFloor()
	if err != nil {
		return 1, err
	}
	defer floor.Close()

	bodies1 := bench.Bodies(20000, 1)
	bodies100 := bench.Bodies(200, 100)
	fmt.Fprintf(stderr, "qbench: profile %d bytes, batch-100 body %d bytes\n", len(bodies1[0]), len(bodies100[0]))
	if err := smoke(ctx, base+"/v1/profiles", key, bodies100[0], 100); err != nil {
		return 1, fmt.Errorf("smoke request: %w", err)
	}

	cpu := []bench.CPUReader{{Name: "qgate", Read: serve.cpu}, {Name: "broker", Read: broker.cpu}, {Name: "qbench", Read: selfCPU}}
	scenario := func(name, url, key string, batch, conns int) bench.Scenario {
		return bench.Scenario{Name: name, URL: url, Key: key, Batch: batch, Conns: conns, Warmup: o.warmup, Duration: o.window, CPU: cpu}
	}
	var all [][]figure
	var failures []string
	for r := 1; r <= o.runs; r++ {
		set := []struct {
			s      bench.Scenario
			bodies [][]byte
			target float64
		}{
			{scenario("ingest", base+"/v1/profiles", key, 1, o.conns1), bodies1, o.target1},
			{scenario("ingest", base+"/v1/profiles", key, 100, o.conns100), bodies100, o.target100},
			{scenario("floor decode-only", floor.URL(), "", 100, o.conns100), bodies100, 0},
		}
		var figs []figure
		for _, sc := range set {
			if err := pause(ctx, time.Second); err != nil {
				return 1, err
			}
			res := bench.Run(ctx, sc.s, sc.bodies)
			if ctx.Err() != nil {
				return 1, ctx.Err()
			}
			f := toFigure(res, sc.target)
			if sc.target == 0 { // the floor: compare with this run's qgate batch-100 figure
				f.ratio = figs[1].rate / f.rate
				f.target = fmt.Sprintf("target>=%g", o.targetRatio)
				f.pass = f.ratio >= o.targetRatio
			}
			figs = append(figs, f)
			fmt.Fprintf(stdout, "run=%d/%d %s\n", r, o.runs, f)
			for _, e := range res.ErrorSamples {
				failures = append(failures, fmt.Sprintf("%s: %s", f.label, e))
			}
			if res.Errors > 0 {
				fmt.Fprintf(stderr, "qbench: %d FAILED REQUESTS in %s, e.g.:\n  %s\n", res.Errors, f.label, strings.Join(res.ErrorSamples, "\n  "))
			}
			if serve.exited() || broker.exited() {
				return 1, fmt.Errorf("a process died during the run\nqgate log:\n%s\nbroker log:\n%s", serve.tail(20), broker.tail(20))
			}
		}
		all = append(all, figs)
	}

	fmt.Fprintf(stdout, "# median of %d run(s); machine: %d CPUs, %s/%s, %s\n", o.runs, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	missed := false
	for i := range all[0] {
		m := median(all, i)
		missed = missed || !m.pass
		fmt.Fprintln(stdout, m)
	}
	if len(failures) > 0 {
		fmt.Fprintf(stderr, "qbench: FAILED: requests failed; qgate log tail:\n%s\n", serve.tail(20))
		return 1, errors.New("some requests failed (see above): the figures are not valid")
	}
	if missed && o.failOnMiss {
		return 3, errors.New("a target was missed")
	}
	return 0, nil
}

func toFigure(r *bench.Result, target float64) figure {
	name := r.Name
	f := figure{
		label:  fmt.Sprintf("%s batch=%d conns=%d", name, r.Batch, r.Conns),
		rate:   r.Rate(),
		p50:    r.Quantile(0.50),
		p99:    r.Quantile(0.99),
		errors: r.Errors,
		pass:   r.Errors == 0 && r.Rate() >= target,
	}
	if target > 0 {
		f.target = fmt.Sprintf("target>=%g", target)
	}
	var cpu []string
	for i, c := range r.Scenario.CPU {
		if r.CPU[i] >= 0 {
			cpu = append(cpu, fmt.Sprintf("%s:%.2f", c.Name, r.CPU[i]))
		}
	}
	f.cpu = strings.Join(cpu, ",")
	return f
}

func (f figure) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s profiles/s=%.0f p50_ms=%.1f p99_ms=%.1f errors=%d", f.label, f.rate, ms(f.p50), ms(f.p99), f.errors)
	if f.ratio > 0 {
		fmt.Fprintf(&b, " ratio=%.2f", f.ratio)
	}
	if f.target != "" {
		verdict := "MISS"
		if f.pass {
			verdict = "PASS"
		}
		fmt.Fprintf(&b, " %s %s", f.target, verdict)
	}
	if f.cpu != "" {
		fmt.Fprintf(&b, " cpu_cores=%s", f.cpu)
	}
	return b.String()
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// median returns figure i's median over the runs: the median rate, p50, p99 and ratio (each
// on its own), and the errors summed; the CPU split is the median-rate run's.
func median(all [][]figure, i int) figure {
	var runs []figure
	for _, figs := range all {
		runs = append(runs, figs[i])
	}
	mid := func(v []float64) float64 {
		slices.Sort(v)
		if n := len(v); n%2 == 0 {
			return (v[n/2-1] + v[n/2]) / 2
		}
		return v[len(v)/2]
	}
	pick := func(get func(figure) float64) float64 {
		v := make([]float64, len(runs))
		for j, f := range runs {
			v[j] = get(f)
		}
		return mid(v)
	}
	m := runs[0]
	m.rate = pick(func(f figure) float64 { return f.rate })
	m.p50 = time.Duration(pick(func(f figure) float64 { return float64(f.p50) }))
	m.p99 = time.Duration(pick(func(f figure) float64 { return float64(f.p99) }))
	m.ratio = pick(func(f figure) float64 { return f.ratio })
	m.errors = 0
	for _, f := range runs {
		m.errors += f.errors
	}
	slices.SortFunc(runs, func(a, b figure) int { return cmpFloat(a.rate, b.rate) })
	m.cpu = runs[len(runs)/2].cpu
	// Re-judge the target on the medians.
	if m.target != "" {
		limit, _ := strconv.ParseFloat(strings.TrimPrefix(m.target, "target>="), 64)
		v := m.rate
		if m.ratio > 0 {
			v = m.ratio
		}
		m.pass = m.errors == 0 && v >= limit
	}
	return m
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func pause(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// freeAddr returns a loopback address with a port free right now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// withoutQGATE drops the caller's QGATE_* settings so that only qbench's reach qgate.
func withoutQGATE(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool { return strings.HasPrefix(kv, "QGATE_") })
}

func waitReady(ctx context.Context, base string, p *proc) error {
	deadline := time.Now().Add(60 * time.Second)
	client := &http.Client{Timeout: 3 * time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.exited() {
			return fmt.Errorf("qgate serve exited before ready (%v):\n%s", p.err, p.tail(20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("qgate not ready after 60s:\n%s", p.tail(20))
		}
		if err := pause(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

func createKey(ctx context.Context, base, adminKey string) (string, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/keys", strings.NewReader(`{"name":"bench","role":"ingest"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+adminKey)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return "", fmt.Errorf("create ingest key: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var out struct {
		Key string `json:"key"`
	}
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &out) != nil || out.Key == "" {
		return "", fmt.Errorf("create ingest key: status %d: %.300s", resp.StatusCode, body)
	}
	return out.Key, nil
}

// smoke sends one batch and checks the whole verdict, which the load loop only samples.
func smoke(ctx context.Context, url, key string, body []byte, batch int) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := (&http.Client{Timeout: 30 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var v struct {
		Accepted int `json:"accepted"`
		Results  []struct {
			Index    int    `json:"index"`
			UpdateID string `json:"updateId"`
			Status   string `json:"status"`
		} `json:"results"`
	}
	if resp.StatusCode != http.StatusAccepted || json.Unmarshal(raw, &v) != nil || v.Accepted != batch || len(v.Results) != batch {
		return fmt.Errorf("status %d: %.500s", resp.StatusCode, raw)
	}
	for i, r := range v.Results {
		if r.Index != i || r.Status != "accepted" || r.UpdateID == "" {
			return fmt.Errorf("result %d: %+v", i, r)
		}
	}
	return nil
}
