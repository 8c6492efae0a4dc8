package local

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tideops/tide/clock"
)

// startHost starts the host process for dir, detached from tide: a new
// session (so its own process group, no controlling terminal), stdin from
// /dev/null, stdout and stderr appended to the console log. It returns the
// pid, which is also the process group and session id.
func startHost(exe []string, dir, id string) (int, error) {
	console, err := os.OpenFile(filepath.Join(dir, consoleFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return 0, fmt.Errorf("opening console log: %w", err)
	}
	defer console.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()
	args := append(append([]string{}, exe[1:]...), "-dir", dir)
	cmd := exec.Command(exe[0], args...)
	cmd.Env = hostEnv(dir, id)
	cmd.Dir = dir
	cmd.Stdin = devnull
	cmd.Stdout = console
	cmd.Stderr = console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting host process: %w", err)
	}
	// Reap it if it exits while this process lives; otherwise init does.
	go func() { _ = cmd.Wait() }()
	return cmd.Process.Pid, nil
}

// hostEnv is the host process's environment: only what it needs, so that
// tide's own environment (credentials included) does not leak to hosts.
func hostEnv(dir, id string) []string {
	env := []string{
		HostDirEnv + "=" + dir,
		hostIDEnv + "=" + id,
		"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
	}
	for _, k := range []string{"TMPDIR", "GOCOVERDIR", "GORACE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// hostAlive reports whether pid is a live (not zombie) process running the
// host of dir. Checking the command line guards against pid reuse.
func hostAlive(pid int, dir string) bool {
	if pid <= 0 {
		return false
	}
	if processState(pid) == 'Z' || processState(pid) == 0 {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	for _, arg := range bytes.Split(cmdline, []byte{0}) {
		if string(arg) == dir {
			return true
		}
	}
	return false
}

// findHost returns the pid of the live process running the host of dir,
// or 0.
func findHost(dir string) int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && hostAlive(pid, dir) {
			return pid
		}
	}
	return 0
}

// processState returns the state letter of pid from /proc, or 0.
func processState(pid int) byte {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return 0
	}
	return stat[i+2]
}

// stopHost stops the host process pid of dir: SIGTERM to its process group,
// then SIGKILL once grace has passed, then SIGKILL to every process left
// that belongs to the host (its session, or carrying its id in their
// environment, like daemons a deployment started with setsid).
func stopHost(ctx context.Context, clk clock.Clock, pid int, dir, id string, grace time.Duration) error {
	if hostAlive(pid, dir) {
		_ = syscall.Kill(-pid, syscall.SIGTERM)
		if !waitGone(ctx, clk, pid, dir, grace) {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
			if !waitGone(ctx, clk, pid, dir, grace) {
				if err := ctx.Err(); err != nil {
					return err
				}
				return fmt.Errorf("host process %d did not exit", pid)
			}
		}
	}
	left := killLeftovers(pid, id)
	deadline := clk.Now().Add(grace)
	for _, p := range left {
		for processState(p) != 0 && processState(p) != 'Z' {
			if !clk.Now().Before(deadline) {
				return fmt.Errorf("process %d of host %s did not exit", p, id)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-clk.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

// waitGone polls until the host is gone, for at most d.
func waitGone(ctx context.Context, clk clock.Clock, pid int, dir string, d time.Duration) bool {
	deadline := clk.Now().Add(d)
	for hostAlive(pid, dir) {
		if !clk.Now().Before(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-clk.After(10 * time.Millisecond):
		}
	}
	return true
}

// killLeftovers kills every process in session sid or whose environment
// marks it as a process of host id, and returns their pids.
func killLeftovers(sid int, id string) []int {
	marker := []byte(hostIDEnv + "=" + id)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var killed []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		if sessionOf(pid) == sid && sid > 0 {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			killed = append(killed, pid)
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if bytes.Equal(kv, marker) {
				_ = syscall.Kill(pid, syscall.SIGKILL)
				killed = append(killed, pid)
				break
			}
		}
	}
	return killed
}

// sessionOf returns the session id of pid from /proc, or -1.
func sessionOf(pid int) int {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return -1
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return -1
	}
	// After "pid (comm) ": state ppid pgrp session ...
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 4 {
		return -1
	}
	s, err := strconv.Atoi(f[3])
	if err != nil {
		return -1
	}
	return s
}
