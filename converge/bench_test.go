package converge_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const benchSchedule = `name: conv
applications:
  - name: web
    revision: "0"
    roles: [web]
    processes: {default: 2}
    commands:
      setup: mkdir -p logs
      deploy: echo "{{.Revision}}" > REVISION
      start: exec sleep 86400
      health: test "$(cat current/REVISION)" = "{{.Revision}}"
roles:
  - name: web
    min: 0
    max: 100
`

// benchDownloadSchedule is benchSchedule with a deploy that waits half a
// second, standing for the download of an artifact.
var benchDownloadSchedule = strings.Replace(benchSchedule,
	`deploy: echo "{{.Revision}}" > REVISION`,
	`deploy: sleep 0.5 && echo "{{.Revision}}" > REVISION`, 1)

// BenchmarkDeploy100 deploys a new revision (release, switch, restart of
// two processes, health) to one local host, then to 100 with 20 at once,
// and reports both times and their ratio, how far the 100 hosts' time
// is from what the machine allows (ratio-to-floor), and the CPU time the whole
// machine spent per host of the 100 (cpu-ms/host: tide, the hosts' SSH
// servers and every shell and command they ran; other load on the machine
// counts too), and tide's own part of it (tide-cpu-ms/host). It starts 100 host processes: it runs only with -bench.
func BenchmarkDeploy100(b *testing.B) { benchDeploy100(b, benchSchedule) }

// BenchmarkDeploy100Download is BenchmarkDeploy100 with a deploy command
// that waits half a second, as a host downloading its artifact would.
func BenchmarkDeploy100Download(b *testing.B) { benchDeploy100(b, benchDownloadSchedule) }

// selfCPU is the CPU time this process (tide's side: the SSH clients and
// the converger) has used.
func selfCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// busyJiffies is the CPU time the machine spent busy, in clock ticks.
func busyJiffies(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Fatal(err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal
	var busy int64
	for i, x := range f[1:min(len(f), 9)] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			b.Fatal(err)
		}
		busy += n
	}
	return busy
}

func benchDeploy100(b *testing.B, text string) {
	const n, concurrency = 100, 20
	tc := newTestCloud(b)
	hosts := make([]target, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, concurrency)
	for i := range hosts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			hosts[i] = tc.launch(b, "bench", fmt.Sprintf("web-%d", i+1), "")
		}()
	}
	wg.Wait()
	c := newConverger(b, text, nil)
	deploy := func(ts []target, rev int) time.Duration {
		cr, err := c.WithRevision("web", fmt.Sprint(rev))
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		var wg sync.WaitGroup
		errs := make(chan error, len(ts))
		for _, tg := range ts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				if err := cr.Converge(context.Background(), tg.h, tg.inst, "web"); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		d := time.Since(t0)
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		return d
	}
	deploy(hosts, 0) // first deploy: setup, not measured
	b.ResetTimer()
	var one, all time.Duration
	var jiffies int64
	var self time.Duration
	for i := 0; i < b.N; i++ {
		one += deploy(hosts[:1], 2*i+1)
		j0, s0 := busyJiffies(b), selfCPU(b)
		all += deploy(hosts, 2*i+2)
		jiffies += busyJiffies(b) - j0
		self += selfCPU(b) - s0
	}
	b.StopTimer()
	b.ReportMetric(float64(one.Milliseconds())/float64(b.N), "ms/1-host")
	b.ReportMetric(float64(all.Milliseconds())/float64(b.N), "ms/100-hosts")
	b.ReportMetric(float64(all)/float64(one), "ratio")
	// USER_HZ is 100 on Linux: a jiffy is 10 ms.
	b.ReportMetric(float64(jiffies*10)/float64(b.N*n), "cpu-ms/host")
	// The best the machine allows: n/concurrency rounds of one host's
	// time, or, when the hosts share fewer cores than that, the CPU the
	// deploys needed spread over every core. ratio-to-floor near 1 says
	// tide adds no wait of its own.
	rounds := time.Duration(n/concurrency) * one
	cpuBound := time.Duration(jiffies) * 10 * time.Millisecond / time.Duration(runtime.NumCPU())
	b.ReportMetric(float64(all)/float64(max(rounds, cpuBound)), "ratio-to-floor")
	b.ReportMetric(float64(self.Microseconds())/1000/float64(b.N*n), "tide-cpu-ms/host")
}
