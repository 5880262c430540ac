//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a child process in its own process group, so that stopping it stops everything it
// started. Its stderr goes to a log file in the run's temp dir.
type proc struct {
	name    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	err     error         // its exit error, once done is closed
}

// startProc starts bin args with env (nil: inherit). stdout, when non-nil, receives the
// process's standard output.
func startProc(name, bin string, args, env []string, logPath string, stdout io.Writer) (*proc, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout = stdout
	cmd.Stderr = logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	return p, nil
}

// exited reports whether the process has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM to the process group, waits up to grace, then SIGKILLs the group.
func (p *proc) stop(grace time.Duration) {
	if p.exited() {
		return
	}
	pgid := -p.cmd.Process.Pid
	_ = syscall.Kill(pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(pgid, syscall.SIGKILL)
		<-p.done
	}
}

// cpu reads the process's cumulative user+system CPU time from /proc (Linux).
func (p *proc) cpu() (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// Fields after the parenthesised command name; utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, errors.New("unexpected /proc stat format")
	}
	const clockTicks = 100 // USER_HZ on every Linux platform Go supports
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// selfCPU is this process's cumulative user+system CPU time.
func selfCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, err
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// tail returns the last n lines of the process's log.
func (p *proc) tail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// startBroker starts `qgate broker` on a free loopback port and returns it with the address
// it printed.
func startBroker(ctx context.Context, bin, dir string, retention int64) (*proc, string, error) {
	pr, pw := io.Pipe()
	p, err := startProc("broker", bin, []string{"broker", "--addr", "127.0.0.1:0", "--retention-bytes", strconv.FormatInt(retention, 10)},
		os.Environ(), dir+"/broker.log", pw)
	if err != nil {
		return nil, "", err
	}
	go func() { <-p.done; pw.Close() }()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if addr, ok := strings.CutPrefix(sc.Text(), "broker "); ok {
				line <- addr
				break
			}
		}
		io.Copy(io.Discard, pr) // keep draining so the broker never blocks on stdout
	}()
	select {
	case addr := <-line:
		return p, addr, nil
	case <-p.done:
		return nil, "", fmt.Errorf("qgate broker exited before listening (%v):\n%s", p.err, p.tail(20))
	case <-time.After(20 * time.Second):
	case <-ctx.Done():
	}
	p.stop(5 * time.Second)
	return nil, "", fmt.Errorf("qgate broker did not print its address in time:\n%s", p.tail(20))
}
