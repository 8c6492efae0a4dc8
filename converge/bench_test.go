package converge_test

import (
	"context"
	"fmt"
	"sync"
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
      start: while :; do sleep 1; done
      health: test "$(cat current/REVISION)" = "{{.Revision}}"
roles:
  - name: web
    min: 0
    max: 100
`

// BenchmarkDeploy100 deploys a new revision (release, switch, restart of
// two processes, health) to one local host, then to 100 with 20 at once,
// and reports both times and their ratio. It starts 100 host processes:
// it runs only with -bench.
func BenchmarkDeploy100(b *testing.B) {
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
	c := newConverger(b, benchSchedule, nil)
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
	for i := 0; i < b.N; i++ {
		one += deploy(hosts[:1], 2*i+1)
		all += deploy(hosts, 2*i+2)
	}
	b.StopTimer()
	b.ReportMetric(float64(one.Milliseconds())/float64(b.N), "ms/1-host")
	b.ReportMetric(float64(all.Milliseconds())/float64(b.N), "ms/100-hosts")
	b.ReportMetric(float64(all)/float64(one), "ratio")
}
