//go:build unix

package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/qgate/qgate/bench"
)

// ---- backlog ----

// cmdBacklog ingests profiles for one destination whose sink answers 503 (down), so that
// every delivery ends up parked in the store, and samples qgate's VmRSS/VmHWM while the
// backlog builds and once it is parked.
func cmdBacklog(ctx context.Context, args []string, stdout, stderr io.Writer) (int, error) {
	var c deliverCommon
	var profiles, outstanding int64
	var batch, conns, status int
	var maxTime, settle time.Duration
	var targetMB float64
	fs := flag.NewFlagSet("qbench backlog", flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.register(fs, 512<<20)
	fs.Int64Var(&profiles, "profiles", 1_000_000, "profiles to ingest for the down destination (one delivery each)")
	fs.IntVar(&batch, "batch", 100, "profiles per ingest request")
	fs.IntVar(&conns, "conns", 4, "ingest connections")
	fs.IntVar(&status, "status", http.StatusServiceUnavailable, "what the down destination answers")
	fs.Int64Var(&outstanding, "outstanding", 20000, "keep at most this many profiles accepted but not yet parked (bounds Kafka lag, so the broker's retention never drops unconsumed jobs)")
	fs.DurationVar(&maxTime, "max-time", 6*time.Minute, "stop ingesting after this long even if -profiles were not reached (the count reached is reported)")
	fs.DurationVar(&settle, "settle", 15*time.Second, "once everything is parked, keep sampling RSS this long; steady RSS is the last sample")
	fs.Float64Var(&targetMB, "target-mb", 150, "target peak RSS (VmHWM) in MB")
	if err := fs.Parse(args); err != nil {
		return 2, nil
	}
	if c.runs == 3 && !flagSet(fs, "runs") {
		c.runs = 1
	}
	if profiles < 1 || batch < 1 || batch > 500 || conns < 1 {
		return 2, fmt.Errorf("bad flags")
	}
	fn := func(ctx context.Context, st *stack, run int) (*result, error) {
		sink, err := bench.StartSink(bench.SinkOptions{Status: status})
		if err != nil {
			return nil, err
		}
		defer sink.Close()
		if _, err := st.createDestinations(ctx, sink, 1, 3000); err != nil {
			return nil, err
		}
		if !sleepCtx(ctx, 2*time.Second) {
			return nil, ctx.Err()
		}
		pid := st.serve.cmd.Process.Pid
		rss0, _, _ := memStatus(pid)
		var parked atomic.Int64
		pollParked := func() {
			if v, err := st.metric(ctx, "qgate_deliveries_parked_total", ""); err == nil {
				parked.Store(int64(v))
			}
		}
		f := newFeeder(st.base, st.ingestKey, batch, 1, conns)
		fctx, stopFeed := context.WithCancel(ctx)
		defer stopFeed()
		var wg sync.WaitGroup
		wg.Add(1)
		begin := time.Now()
		go func() {
			defer wg.Done()
			f.run(fctx, conns, profiles, func() bool { return f.accepted.Load()-parked.Load() < outstanding })
		}()
		type sample struct {
			at               time.Duration
			ingested, parked int64
			rss, hwm         int64
		}
		var samples []sample
		take := func() sample {
			pollParked()
			rss, hwm, _ := memStatus(pid)
			s := sample{at: time.Since(begin), ingested: f.accepted.Load(), parked: parked.Load(), rss: rss, hwm: hwm}
			samples = append(samples, s)
			return s
		}
		nextMark := profiles / 10
		ticker := time.NewTicker(250 * time.Millisecond)
		defer ticker.Stop()
		lastRSS := time.Time{}
		timedOut := false
		var cpu0 = st.cpuSampler().sample()
	loop:
		for {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-ticker.C:
			}
			if time.Since(lastRSS) >= time.Second {
				s := take()
				lastRSS = time.Now()
				if s.parked >= nextMark && nextMark > 0 {
					fmt.Fprintf(stderr, "qbench: backlog t=%4.0fs ingested=%d parked=%d VmRSS=%.0fMB VmHWM=%.0fMB\n", s.at.Seconds(), s.ingested, s.parked, mb(s.rss), mb(s.hwm))
					for nextMark <= s.parked {
						nextMark += profiles / 10
					}
				}
			} else {
				pollParked()
			}
			if parked.Load() >= profiles {
				break loop
			}
			if time.Since(begin) > maxTime {
				timedOut = true
				break loop
			}
			if err := st.died(); err != nil {
				return nil, err
			}
		}
		stopFeed()
		wg.Wait()
		buildTime := time.Since(begin)
		cpu1 := st.cpuSampler().sample()
		// Let what was accepted park (bounded), then sample the steady state.
		deadline := time.Now().Add(60 * time.Second)
		for parked.Load() < f.accepted.Load() && time.Now().Before(deadline) {
			if !sleepCtx(ctx, 500*time.Millisecond) {
				return nil, ctx.Err()
			}
			pollParked()
		}
		settleEnd := time.Now().Add(settle)
		for time.Now().Before(settleEnd) {
			take()
			if !sleepCtx(ctx, time.Second) {
				return nil, ctx.Err()
			}
		}
		last := take()
		var peakRSS int64
		for _, s := range samples {
			peakRSS = max(peakRSS, s.rss)
		}
		// RSS growth: the sample nearest each tenth of what was reached.
		growth := ""
		reached := last.parked
		for k := int64(1); k <= 10; k++ {
			mark := reached * k / 10
			for _, s := range samples {
				if s.parked >= mark {
					growth += fmt.Sprintf("%dk:%.0f,", s.parked/1000, mb(s.rss))
					break
				}
			}
		}
		res := newResult(fmt.Sprintf("backlog store=%s target_profiles=%d status=%d batch=%d", st.storeName(), profiles, status, batch))
		res.set("ingested", float64(f.accepted.Load()), 0)
		res.set("parked", float64(last.parked), 0)
		res.set("build_s", buildTime.Seconds(), 0)
		res.set("parked_per_s", float64(last.parked)/buildTime.Seconds(), 0)
		res.set("start_rss_mb", mb(rss0), 0)
		res.set("peak_hwm_mb", mb(last.hwm), 0)
		res.set("peak_sampled_rss_mb", mb(peakRSS), 0)
		res.set("steady_rss_mb", mb(last.rss), 0)
		res.set("sink_calls", float64(sink.Counts().Arrivals), 0)
		res.set("ingest_errors", float64(f.errors.Load()), 0)
		res.judge, res.target, res.atMost = "peak_hwm_mb", targetMB, true
		res.text = "cpu_cores_during_build=" + st.cpuSampler().cores(cpu0, cpu1, buildTime)
		if timedOut {
			res.text += fmt.Sprintf(" TIMED_OUT_after=%s", maxTime)
		}
		res.text += " rss_mb_by_parked=" + growth
		return res, nil
	}
	return runScenario(ctx, "backlog", c, nil, fn, stdout, stderr)
}

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}
