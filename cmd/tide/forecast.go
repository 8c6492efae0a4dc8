package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/tideops/tide/forecast"
	"github.com/tideops/tide/trace"
)

const forecastSummary = `Forecast load: M4-layout files or rolling-origin evaluation on a trace.

  tide forecast m4 --train FILE --horizon 48 --out FILE.csv [--holdout 48 --eval]
  tide forecast eval --trace FILE.csv --horizon DURATION [--weeks N --every DURATION]`

func init() {
	register(command{
		Name:    "forecast",
		Summary: "forecast M4-layout series or evaluate the predictor on a trace",
		Run:     runForecast,
	})
}

func runForecast(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(fs.Output(), "Usage: tide forecast m4|eval [flags]\n\n%s\n", forecastSummary)
		if len(args) == 0 {
			return exitError{2}
		}
		return flag.ErrHelp
	}
	sub := flag.NewFlagSet("tide forecast "+args[0], flag.ContinueOnError)
	sub.SetOutput(fs.Output())
	switch args[0] {
	case "m4":
		return runForecastM4(ctx, e, sub, args[1:])
	case "eval":
		return runForecastEval(ctx, e, sub, args[1:])
	}
	fmt.Fprintf(fs.Output(), "tide forecast: unknown subcommand %q (want m4 or eval)\n", args[0])
	return exitError{2}
}

func runForecastM4(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	train := fs.String("train", "", "M4-layout CSV to forecast (id, then values; required)")
	horizon := fs.Int("horizon", 48, "steps to forecast")
	out := fs.String("out", "", "write forecasts here as id,F1,...,Fh")
	holdout := fs.Int("holdout", 0, "cut this many values off the end of each series first")
	eval := fs.Bool("eval", false, "with --holdout: score the forecasts against the values cut off")
	quantile := fs.Float64("quantile", 0.95, "upper quantile to evaluate")
	workers := fs.Int("workers", 2, "series forecast in parallel")
	if err := parseFlags(fs, args, "Forecast every series of an M4-layout CSV file."); err != nil {
		return err
	}
	switch {
	case *train == "":
		return errors.New("--train is required")
	case *horizon < 1:
		return fmt.Errorf("--horizon %d must be positive", *horizon)
	case *eval && *holdout < 1:
		return errors.New("--eval needs --holdout")
	case *out == "" && !*eval:
		return errors.New("--out is required unless --eval is given")
	}
	series, err := readM4File(*train)
	if err != nil {
		return err
	}
	begin := time.Now()
	if *eval {
		rep, err := forecast.EvalM4(ctx, series, *holdout, *horizon, *workers, *quantile)
		if err != nil {
			return err
		}
		w := e.Stdout
		fmt.Fprintf(w, "series %d, holdout %d, horizon %d, time %.1fs\n", rep.Series, *holdout, rep.Horizon, time.Since(begin).Seconds())
		fmt.Fprintf(w, "%-16s %7s %7s\n", "model", "MASE", "sMAPE")
		for _, s := range []*forecast.Score{&rep.Tide, &rep.Naive} {
			fmt.Fprintf(w, "%-16s %7.3f %7.3f\n", s.Name, s.MASE(), s.SMAPE())
		}
		fmt.Fprintf(w, "tide/naive ratio  MASE %.3f  sMAPE %.3f\n", rep.Tide.MASE()/rep.Naive.MASE(), rep.Tide.SMAPE()/rep.Naive.SMAPE())
		fmt.Fprintf(w, "upper p%g coverage %.3f (%d of %d), band width %.3f of the point\n", 100*rep.Quantile, rep.Tide.Coverage(), rep.Tide.Hits, rep.Tide.Seen, rep.Upper.Width())
		if *out == "" {
			return nil
		}
	}
	if *holdout > 0 {
		for i := range series {
			n := len(series[i].Values) - *holdout
			if n < 1 {
				return fmt.Errorf("series %s: %d values, holdout %d", series[i].ID, len(series[i].Values), *holdout)
			}
			series[i].Values = series[i].Values[:n]
		}
	}
	point, _, err := forecast.ForecastAll(ctx, series, *horizon, *workers, *quantile)
	if err != nil {
		return err
	}
	ids := make([]string, len(series))
	for i, s := range series {
		ids[i] = s.ID
	}
	f, err := os.Create(*out)
	if err != nil {
		return fmt.Errorf("writing forecasts: %w", err)
	}
	if err := forecast.WriteM4(f, ids, point, *horizon); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing forecasts: %w", err)
	}
	e.Logger.Info("forecasts written", "series", len(series), "horizon", *horizon, "path", *out, "seconds", time.Since(begin).Seconds())
	return nil
}

func readM4File(path string) ([]forecast.Series, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading series: %w", err)
	}
	defer f.Close()
	s, err := forecast.ReadM4(f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return s, nil
}

func runForecastEval(ctx context.Context, e *env, fs *flag.FlagSet, args []string) error {
	path := fs.String("trace", "", "trace CSV with timestamp,requests (required)")
	horizon := fs.Duration("horizon", 0, "forecast horizon, e.g. 15m or 6h (required)")
	weeks := fs.Int("weeks", 4, "origins over the last this many weeks")
	every := fs.Duration("every", time.Hour, "time between origins")
	quantile := fs.Float64("quantile", 0.95, "upper quantile")
	if err := parseFlags(fs, args, "Rolling-origin evaluation of the predictor on a trace."); err != nil {
		return err
	}
	if *path == "" || *horizon <= 0 {
		return errors.New("--trace and a positive --horizon are required")
	}
	tr, err := trace.ReadFile(*path)
	if err != nil {
		return err
	}
	begin := time.Now()
	rep, err := forecast.EvalTrace(ctx, tr, forecast.TraceOptions{
		Horizon: *horizon, Weeks: *weeks, Every: *every, Quantile: *quantile,
	})
	if err != nil {
		return err
	}
	w := e.Stdout
	fmt.Fprintf(w, "step %v, horizon %v, origins %d, model changes %d, time %.1fs\n", rep.Step, rep.Horizon, rep.Origins, rep.ModelChanges, time.Since(begin).Seconds())
	fmt.Fprintf(w, "%-22s %7s %7s\n", "model", "MASE", "sMAPE")
	for _, s := range rep.Models {
		fmt.Fprintf(w, "%-22s %7.3f %7.3f\n", s.Name, s.MASE(), s.SMAPE())
	}
	p := 100 * rep.Quantile
	fmt.Fprintf(w, "upper p%g coverage per step %.3f (%d of %d), band width %.3f of the point\n",
		p, rep.PerStep.Coverage(), rep.PerStep.Hits, rep.PerStep.Seen, rep.PerStep.Width())
	fmt.Fprintf(w, "upper p%g coverage of the window maximum %.3f (%d of %d), band width %.3f of the point\n",
		p, rep.Window.Coverage(), rep.Window.Hits, rep.Window.Seen, rep.Window.Width())
	if rep.InsufficientHistory > 0 {
		fmt.Fprintf(w, "origins without enough history: %d\n", rep.InsufficientHistory)
	}
	return nil
}
