package main

import "syscall"

// sysProcAttr puts a child in its own process group and has the kernel kill it if qbench dies
// without cleaning up (kill -9).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
