package converge

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// processes returns a script fragment that runs exactly the
// application's count of processes: those started as something else
// (another revision, another start command) are restarted, missing ones
// started, those above the count stopped.
func (c *Converger) processes(t *target, a *app, v Vars, as AppState) (string, error) {
	want := v.Processes
	if want > 0 && a.tmpl[cmdStart] == nil {
		return "", fmt.Errorf("application %s: %w: %d processes wanted but no start command", a.Name, errConfig, want)
	}
	var stop []int
	start := map[int]string{} // index -> rendered start command
	specs := map[int]string{}
	for i := 1; i <= want; i++ {
		vi := v
		vi.Index = i
		cmd, err := a.render(cmdStart, vi)
		if err != nil {
			return "", err
		}
		// What a process was started as; not the count, so that a count
		// change leaves the processes it keeps alone (their TIDE_PROCESSES
		// is then stale; a start command using .Processes restarts them).
		vs := vi
		vs.Processes = 0
		spec := hash(a.Revision, cmd, strings.Join(vs.env(), "\n"))
		p, ok := as.procs[i]
		switch {
		case ok && p.alive && p.spec == spec:
			continue // running as it should
		case ok && p.alive:
			stop = append(stop, i)
		}
		start[i], specs[i] = cmd, spec
	}
	for _, i := range all(as) {
		if i > want {
			stop = append(stop, i)
		}
	}
	if len(stop) == 0 && len(start) == 0 {
		return "", nil
	}
	c.log.Info("processes", "label", t.label, "app", a.Name, "want", want, "stop", len(stop), "start", len(start))
	restarted := func(i int) bool { _, ok := start[i]; return ok }
	return c.stopScript(t, a, a.Name, stop, restarted, func(b *strings.Builder) error {
		var pidFiles, specLines strings.Builder
		for i := 1; i <= want; i++ {
			cmd, ok := start[i]
			if !ok {
				continue
			}
			vi := v
			vi.Index = i
			n := strconv.Itoa(i)
			// setsid: the process outlives the SSH session in a session
			// of its own, so that stopping it reaches its children too.
			fmt.Fprintf(b, "%s $S /bin/sh -c %s </dev/null >>logs/%s.log 2>&1 &\n", envAssigns(vi.env()), shellQuote(cmd), n)
			fmt.Fprintf(b, "echo $! > run/.tmp/%s.pid || exit 1\n", n)
			fmt.Fprintf(&pidFiles, " run/.tmp/%s.pid", n)
			fmt.Fprintf(&specLines, "printf '%%s\\n' %s > run/%s.spec || exit 1\n", specs[i], n)
		}
		// Each pid file replaces the old one at once (a rename), all in
		// one mv.
		if pidFiles.Len() > 0 {
			fmt.Fprintf(b, "mv -f%s run/ || exit 1\n%s", pidFiles.String(), specLines.String())
		}
		return nil
	})
}

// stopProcs stops processes idx of application name (a may be nil when
// the schedule no longer has it): each gets the stop command (or SIGTERM
// to its process group), then all are waited for together until the stop
// timeout, when those left get SIGKILL. The waiting happens on the host,
// in one SSH command.
func (c *Converger) stopProcs(ctx context.Context, t *target, a *app, name string, idx []int) error {
	script, err := c.stopScript(t, a, name, idx, nil, nil)
	if err != nil {
		return err
	}
	out, err := t.h.Run(ctx, script, nil)
	if err != nil {
		return fmt.Errorf("application %s: stopping processes: %w", name, err)
	}
	c.logKilled(t, name, out)
	return nil
}

// logKilled logs the processes a stop script had to kill.
func (c *Converger) logKilled(t *target, name string, out []byte) {
	for _, line := range strings.Split(string(out), "\n") {
		if pids, ok := strings.CutPrefix(line, "killed "); ok {
			c.log.Warn("processes did not stop in time, killed", "label", t.label, "app", name, "pids", pids, "timeout", c.o.StopTimeout)
		}
	}
}

// stopScript returns the script stopProcs runs; then, when set, appends
// commands run afterwards (starting processes), and the pid files of the
// processes restarted says (nil: none) are left for them to replace. It
// is a brace group, not a subshell (one fork fewer), that exits the
// script when it fails: a caller may add to it.
func (c *Converger) stopScript(t *target, a *app, name string, idx []int, restarted func(int) bool, then func(*strings.Builder) error) (string, error) {
	var b strings.Builder
	b.WriteString("{\n")
	b.WriteString(aliveFn + "\n")
	fmt.Fprintf(&b, "cd %s || exit 1\n[ -d run/.tmp ] && [ -d logs ] || mkdir -p run/.tmp logs || exit 1\nS=; command -v setsid >/dev/null 2>&1 && S=setsid\npids=\n", shellQuote(t.appDir(name)))
	for _, i := range idx {
		n := strconv.Itoa(i)
		stopCmd := ""
		if a != nil {
			v := t.vars(a)
			v.Index = i
			var err error
			if stopCmd, err = a.render(cmdStop, v); err != nil {
				return "", err
			}
			if stopCmd != "" {
				stopCmd = runCmd(stopCmd, append(v.env(), "TIDE_PID=$pid"))
				// TIDE_PID is expanded by the shell: unquote it.
				stopCmd = strings.Replace(stopCmd, "TIDE_PID="+shellQuote("$pid"), `TIDE_PID="$pid"`, 1)
			}
		}
		if stopCmd == "" {
			stopCmd = `kill -TERM -- -"$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null`
		} else {
			stopCmd += " >>logs/" + n + ".log 2>&1"
		}
		fmt.Fprintf(&b, "if [ -f run/%[1]s.pid ]; then pid=; read -r pid < run/%[1]s.pid; if alive \"$pid\"; then %[2]s || true; pids=\"$pids $pid\"; fi; fi\n", n, stopCmd)
	}
	// The wait polls after 10, 20, 50 ms, then every 100 ms: most
	// processes are gone within milliseconds of SIGTERM. n counts the
	// hundredths of a second waited.
	limit := int(c.o.StopTimeout / (10 * time.Millisecond))
	fmt.Fprintf(&b, `n=0; d=1
while :; do
  left=; for p in $pids; do alive "$p" && left="$left $p"; done
  [ -z "$left" ] && break
  if [ "$n" -ge %d ]; then
    for p in $left; do kill -KILL -- -"$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null; done
    echo "killed$left"
    k=0
    while [ "$k" -lt 50 ]; do
      l2=; for p in $left; do alive "$p" && l2=1; done
      [ -z "$l2" ] && break
      sleep 0.02; k=$((k+1))
    done
    break
  fi
  case $d in 1) sleep 0.01; n=$((n+1)); d=2 ;; 2) sleep 0.02; n=$((n+2)); d=5 ;; 5) sleep 0.05; n=$((n+5)); d=10 ;; *) sleep 0.1; n=$((n+10)) ;; esac
done
`, limit)
	var rm strings.Builder
	for _, i := range idx {
		if restarted == nil || !restarted(i) {
			fmt.Fprintf(&rm, " run/%[1]d.pid run/%[1]d.spec", i)
		}
	}
	if rm.Len() > 0 {
		fmt.Fprintf(&b, "rm -f%s\n", rm.String())
	}
	if then != nil {
		if err := then(&b); err != nil {
			return "", err
		}
	}
	b.WriteString("} || exit 1\n")
	return b.String(), nil
}
