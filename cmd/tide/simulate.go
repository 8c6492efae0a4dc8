package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/tideops/tide/config"
	"github.com/tideops/tide/loadgen"
	"github.com/tideops/tide/predictor"
	"github.com/tideops/tide/scheduler"
	"github.com/tideops/tide/simulate"
	"github.com/tideops/tide/trace"
)

func init() {
	register(command{Name: "simulate", Summary: "replay a load trace through the decisions and compare with baselines", Run: runSimulate})
}

const simulateHelp = `Replays a load trace (--trace FILE.csv, columns timestamp,requests) or
synthetic load (--synthetic PROFILE) through tide's decision code on a
virtual clock. Simulated hosts become ready --lead after they are asked for;
terminations are immediate. Baselines run alongside: a static fleet sized
for the peak, reactive target tracking with 20% headroom, and the schedule
alone. Without -c, the role is a load-driven "web" role built from the
flags; with -c FILE --role NAME, the role and its windows come from the
schedule file (explicit flags still override min, max, lead, capacity and
headroom).

Outputs: a summary table (or --json), the timeline (--out FILE.csv, header
timestamp,role,load,forecast,desired,ready) and a chart (--chart FILE.svg).

Synthetic profiles: ` + "office, weekly-batch, monthly, spike."

// simulateFlags are the parsed flags of tide simulate.
type simulateFlags struct {
	trace, synthetic, file, role, out, chart, start, tz string
	capacity, peak, headroom, quantile                  float64
	lead, step, stabilization                           time.Duration
	min, max, maxStep, days                             int
	seed                                                int64
	predict, json                                       bool
	set                                                 map[string]bool
}

func runSimulate(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	var f simulateFlags
	fs.StringVar(&f.trace, "trace", "", "load trace CSV (timestamp,requests; RFC3339 UTC; fixed step; gaps allowed)")
	fs.StringVar(&f.synthetic, "synthetic", "", "generate load instead of reading a trace: "+strings.Join(loadgen.Profiles(), ", "))
	fs.IntVar(&f.days, "days", 28, "days of synthetic load")
	fs.DurationVar(&f.step, "step", time.Minute, "step of synthetic load")
	fs.Int64Var(&f.seed, "seed", 1, "seed of synthetic load")
	fs.Float64Var(&f.peak, "peak", 1000, "peak of synthetic load")
	fs.StringVar(&f.start, "start", "2026-01-05T00:00:00Z", "start of synthetic load, RFC3339")
	fs.StringVar(&f.tz, "tz", "UTC", "time zone of synthetic office hours (IANA name)")
	fs.Float64Var(&f.capacity, "capacity-per-instance", 0, "load one host serves per step (default: the role's capacity with -c, peak/20 with --synthetic)")
	fs.DurationVar(&f.lead, "lead", 10*time.Minute, "time from asking for a host to it serving (default: the role's lead_time with -c, else 10m)")
	fs.IntVar(&f.min, "min", 1, "fewest hosts")
	fs.IntVar(&f.max, "max", 1000, "most hosts")
	fs.Float64Var(&f.headroom, "headroom", 0.2, "fraction kept above the current load by tide's load input")
	fs.DurationVar(&f.stabilization, "stabilization", 15*time.Minute, "how long a lower count must be wanted before scaling down")
	fs.IntVar(&f.maxStep, "max-step", 0, "most hosts removed per decision (0: no limit)")
	fs.BoolVar(&f.predict, "predict", true, "use the load forecast")
	fs.Float64Var(&f.quantile, "quantile", 0.95, "upper quantile of the forecast that sizes the fleet")
	fs.StringVar(&f.file, "c", "", "schedule file: take the role and its policies from it (needs --role)")
	fs.StringVar(&f.role, "role", "", "role to simulate from the schedule file")
	fs.StringVar(&f.out, "out", "", "write the timeline CSV here")
	fs.BoolVar(&f.json, "json", false, "print the summary as JSON")
	fs.StringVar(&f.chart, "chart", "", "write an SVG chart here")
	if err := parseFlags(fs, args, simulateHelp); err != nil {
		return err
	}
	f.set = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })

	tr, err := simulationLoad(&f)
	if err != nil {
		return err
	}
	role, lead, err := simulationRole(&f, tr)
	if err != nil {
		return err
	}
	res, err := simulate.Run(ctx, tr, role, simulate.Options{Lead: lead})
	if err != nil {
		return err
	}
	if f.out != "" {
		if err := writeFile(f.out, func(w io.Writer) error { return simulate.WriteTimeline(w, res) }); err != nil {
			return err
		}
	}
	if f.chart != "" {
		if err := writeFile(f.chart, func(w io.Writer) error { return simulate.WriteChart(w, res) }); err != nil {
			return err
		}
	}
	if f.json {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res.Summarize())
	}
	printSimulation(e.Stdout, res)
	return nil
}

// simulationLoad reads the trace or generates synthetic load.
func simulationLoad(f *simulateFlags) (*trace.Trace, error) {
	switch {
	case f.trace != "" && f.synthetic != "":
		return nil, fmt.Errorf("--trace and --synthetic exclude each other")
	case f.trace != "":
		return trace.ReadFile(f.trace)
	case f.synthetic != "":
		start, err := time.Parse(time.RFC3339, f.start)
		if err != nil {
			return nil, fmt.Errorf("--start: want RFC3339, got %q", f.start)
		}
		loc, err := time.LoadLocation(f.tz)
		if err != nil {
			return nil, fmt.Errorf("--tz: %w", err)
		}
		if f.days <= 0 || f.step <= 0 {
			return nil, fmt.Errorf("--days and --step must be positive")
		}
		g, err := loadgen.New(f.synthetic, loadgen.Options{Seed: f.seed, Peak: f.peak, Location: loc})
		if err != nil {
			return nil, err
		}
		start = start.UTC().Truncate(f.step)
		return g.Series(start, start.AddDate(0, 0, f.days), f.step), nil
	}
	return nil, fmt.Errorf("one of --trace FILE.csv or --synthetic PROFILE is required")
}

// simulationRole builds the role to simulate from the flags or the
// schedule file, and the lead time.
func simulationRole(f *simulateFlags, tr *trace.Trace) (simulate.Role, time.Duration, error) {
	lead := f.lead
	p := scheduler.Params{Role: "web", Min: f.min, Max: f.max, LoadDriven: true, Headroom: f.headroom,
		Stabilization: f.stabilization, MaxStep: f.maxStep, Predict: f.predict}
	role := simulate.Role{Capacity: f.capacity}
	if f.file != "" {
		if f.role == "" {
			return role, 0, fmt.Errorf("-c needs --role NAME")
		}
		s, err := config.Load(f.file)
		if err != nil {
			return role, 0, err
		}
		r, ok := s.Role(f.role)
		if !ok {
			return role, 0, fmt.Errorf("--role: no role %q in %s", f.role, f.file)
		}
		ws, err := s.Windows(f.role)
		if err != nil {
			return role, 0, err
		}
		p = scheduler.ParamsFor(s, r)
		role.Windows = ws
		if !f.set["capacity-per-instance"] {
			role.Capacity = r.Capacity
			if role.Capacity <= 0 {
				role.Capacity = p.Target
			}
		}
		if !f.set["lead"] && p.Lead > 0 {
			lead = p.Lead
		}
		for name, dst := range map[string]*int{"min": &p.Min, "max": &p.Max, "max-step": &p.MaxStep} {
			if f.set[name] {
				*dst = map[string]int{"min": f.min, "max": f.max, "max-step": f.maxStep}[name]
			}
		}
		if f.set["headroom"] {
			p.Headroom = f.headroom
		}
		if f.set["stabilization"] {
			p.Stabilization = f.stabilization
		}
		if f.set["predict"] {
			p.Predict = f.predict
		}
	} else if f.role != "" {
		p.Role = f.role
	}
	if role.Capacity <= 0 && f.synthetic != "" {
		role.Capacity = f.peak / 20
	}
	if role.Capacity <= 0 {
		return role, 0, fmt.Errorf("--capacity-per-instance N is required (the load one host serves per step)")
	}
	if p.LoadDriven && p.Target <= 0 {
		p.Target = role.Capacity
	}
	role.Params = p
	role.NewForecaster = newSimulationForecaster(f.quantile)
	return role, lead, nil
}

// newSimulationForecaster returns the constructor of tide's forecaster.
// It is the service's forecaster, predictor.Online, refitting synchronously
// inside Observe (every 6 hours of data by default), so that a simulation is
// deterministic.
func newSimulationForecaster(quantile float64) func(step time.Duration) scheduler.Forecaster {
	return func(step time.Duration) scheduler.Forecaster {
		return predictor.New(predictor.Options{Step: step, Quantile: quantile})
	}
}

func writeFile(path string, write func(io.Writer) error) error {
	fh, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := write(fh); err != nil {
		fh.Close()
		return err
	}
	if err := fh.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// printSimulation prints the summary as a table.
func printSimulation(w io.Writer, res *simulate.Result) {
	s := res.Summarize()
	fmt.Fprintf(w, "role %s on %s: %d steps of %s from %s to %s", s.Role, s.Trace, s.Steps, s.Step,
		s.Start.Format(time.RFC3339), s.End.Format(time.RFC3339))
	if s.Gaps > 0 {
		fmt.Fprintf(w, " (%d gaps, %d steps missing)", s.Gaps, s.MissingSteps)
	}
	fmt.Fprintf(w, "\nlead %s, capacity %g per host, min %d, max %d\n\n", s.Lead, s.Capacity, s.Min, s.Max)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "strategy\tinstance-hours\tvs oracle\tunder-provisioned\tover-provisioned\tunserved\tscale events\tpeak hosts\t")
	row := func(name string, m simulate.Metrics) {
		fmt.Fprintf(tw, "%s\t%.1f\t%.3f\t%.2f%%\t%.2f%%\t%.3f%%\t%d\t%d\t\n", name, m.InstanceHours, m.CostRatio,
			100*m.UnderProvisionedShare, 100*m.OverProvisionedShare, 100*m.UnservedFraction, m.ScaleEvents, m.PeakHosts)
	}
	row(simulate.Tide, res.Tide.Metrics)
	for _, b := range res.Baselines {
		row(b.Strategy, b.Metrics)
	}
	fmt.Fprintf(tw, "oracle\t%.1f\t1.000\t\t\t\t\t\t\n", s.OracleInstanceHours)
	tw.Flush()
}
