package promql

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tideops/tide/loadsource"
	"github.com/tideops/tide/scheduler"
)

// prometheusBinary finds Debian's prometheus, or skips the test outside CI.
func prometheusBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("prometheus"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/prometheus"); err == nil {
		return "/usr/bin/prometheus"
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("prometheus is not installed (Debian package prometheus); CI must have it")
	}
	t.Skip("prometheus is not installed (Debian package prometheus)")
	return ""
}

func freeAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startPrometheus runs a Prometheus server scraping target every second
// and returns its URL and a function that stops it (also run at clean-up).
func startPrometheus(t *testing.T, target string) (string, func()) {
	t.Helper()
	bin := prometheusBinary(t)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: target
    static_configs:
      - targets: ['%s']
`, target)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "prometheus.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddress(t)
	cmd := exec.Command(bin,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting prometheus: %v", err)
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Kill()
		cmd.Wait()
		logFile.Close()
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			if out, err := os.ReadFile(logPath); err == nil {
				t.Logf("prometheus log:\n%s", out)
			}
		}
	})
	url := "http://" + addr
	poll(t, 30*time.Second, "prometheus ready", func() error {
		resp, err := http.Get(url + "/-/ready")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	})
	return url, stop
}

// poll calls f until it returns nil or the deadline passes.
func poll(t *testing.T, within time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %v", what, within, err)
		}
		<-tick.C
	}
}

func TestPrometheusServer(t *testing.T) {
	reg := prometheus.NewRegistry()
	load := prometheus.NewGauge(prometheus.GaugeOpts{Name: "tide_test_load", Help: "load the test controls"})
	multi := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "tide_test_multi", Help: "two series"}, []string{"i"})
	nan := prometheus.NewGauge(prometheus.GaugeOpts{Name: "tide_test_nan", Help: "a NaN"})
	reg.MustRegister(load, multi, nan)
	load.Set(42)
	multi.WithLabelValues("a").Set(1)
	multi.WithLabelValues("b").Set(2)
	nan.Set(math.NaN())
	target := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	defer target.Close()

	url, stopPrometheus := startPrometheus(t, target.Listener.Addr().String())
	client, err := NewClient(url)
	if err != nil {
		t.Fatal(err)
	}
	source := func(query string) *Source {
		s, err := New(client, query, Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	ctx := context.Background()
	web := source(`tide_test_load{job="target"}`)

	// awaitValue polls until the source gives want; any other value
	// seen on the way must be a value the gauge had (never a zero).
	awaitValue := func(s *Source, want float64, allowed ...float64) scheduler.Sample {
		t.Helper()
		var got scheduler.Sample
		poll(t, 30*time.Second, fmt.Sprintf("%s = %g", s.Query(), want), func() error {
			now := time.Now()
			smp, err := s.Latest(ctx, now)
			if err != nil {
				if !errors.Is(err, loadsource.ErrNoData) {
					t.Fatalf("error does not match ErrNoData: %v", err)
				}
				return err
			}
			if d := smp.At.Sub(now); d < -time.Millisecond || d > time.Millisecond {
				t.Fatalf("sample at %s, want the evaluation instant %s", smp.At, now)
			}
			if smp.Value != want {
				for _, a := range allowed {
					if smp.Value == a {
						return fmt.Errorf("still %g", smp.Value)
					}
				}
				t.Fatalf("%s gave %g, want %g (or one of %v on the way)", s.Query(), smp.Value, want, allowed)
			}
			got = smp
			return nil
		})
		return got
	}

	t.Run("latest is the gauge", func(t *testing.T) {
		awaitValue(web, 42)
		load.Set(43.5)
		awaitValue(web, 43.5, 42)
	})

	t.Run("aggregated series", func(t *testing.T) {
		awaitValue(source(`sum(tide_test_multi)`), 3)
	})

	t.Run("range backfills history", func(t *testing.T) {
		now := time.Now()
		samples, err := web.Range(ctx, now.Add(-20*time.Second), now, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if len(samples) < 2 {
			t.Fatalf("range gave %d samples, want a few", len(samples))
		}
		for _, s := range samples {
			if s.Value != 42 && s.Value != 43.5 {
				t.Fatalf("range sample %+v is not a value the gauge had", s)
			}
		}
		if last := samples[len(samples)-1]; last.Value != 43.5 {
			t.Fatalf("newest range sample %+v, want 43.5", last)
		}
	})

	for _, tc := range []struct {
		name, query, reason string
		badData             bool
	}{
		{name: "absent metric", query: `tide_test_absent`, reason: "no series"},
		{name: "several series", query: `tide_test_multi`, reason: "2 series"},
		{name: "NaN value", query: `tide_test_nan`, reason: "not a load"},
		{name: "range vector", query: `tide_test_load[10s]`, reason: "matrix"},
		{name: "bad PromQL", query: `sum(tide_test_load`, reason: "bad_data", badData: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			smp, err := source(tc.query).Latest(ctx, time.Now())
			if !errors.Is(err, loadsource.ErrNoData) || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("got %+v, %v; want ErrNoData about %q", smp, err, tc.reason)
			}
			var apiErr *v1.Error
			if tc.badData && (!errors.As(err, &apiErr) || apiErr.Type != v1.ErrBadData) {
				t.Fatalf("bad PromQL error does not carry the server's bad_data error: %v", err)
			}
		})
	}

	t.Run("stopped target is missing, not zero", func(t *testing.T) {
		target.Close()
		poll(t, 30*time.Second, "series goes stale after the target stops", func() error {
			smp, err := web.Latest(ctx, time.Now())
			if err == nil {
				if smp.Value != 43.5 {
					t.Fatalf("stopped target gave %g, want 43.5 until stale then ErrNoData", smp.Value)
				}
				return fmt.Errorf("still %g", smp.Value)
			}
			if !errors.Is(err, loadsource.ErrNoData) || !strings.Contains(err.Error(), "no series") {
				t.Fatalf("stale series: %v, want ErrNoData (no series)", err)
			}
			return nil
		})
	})

	t.Run("server down", func(t *testing.T) {
		stopPrometheus()
		smp, err := web.Latest(ctx, time.Now())
		if err == nil || !errors.Is(err, loadsource.ErrNoData) {
			t.Fatalf("server down: got %+v, %v; want an error matching ErrNoData", smp, err)
		}
		if _, err := web.Range(ctx, time.Now().Add(-time.Minute), time.Now(), time.Second); err == nil {
			t.Fatal("range with the server down succeeded")
		}
	})
}
