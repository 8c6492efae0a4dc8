package simulate

import (
	"bufio"
	"fmt"
	"html"
	"io"
	"math"
	"strings"
	"time"
)

// Chart geometry, in SVG user units (pixels).
const (
	chartWidth  = 1400
	chartHeight = 920
	marginLeft  = 80
	marginRight = 30
	plotWidth   = chartWidth - marginLeft - marginRight
)

// Series colours.
const (
	colLoad     = "#4a90d9"
	colForecast = "#e8912d"
	colDesired  = "#8e44ad"
	colReady    = "#27ae60"
	colUnder    = "#d62728"
	colGap      = "#d0d0d0"
)

// bin aggregates the rows that fall in one pixel column.
type bin struct {
	n                   int
	loadMin, loadMax    float64
	fcMax               float64 // NaN when no forecast
	desMax              int
	readyMin, readyMax  int
	under               bool
	unserved, totalLoad float64
}

// WriteChart draws tide's timeline as a standalone SVG: load (min/max
// envelope per pixel column), the forecast the decisions used,
// desired×capacity and ready×capacity over the whole trace, marks for the
// under-provisioned steps and the trace's gaps, then a zoom on the worst
// under-provisioned day (the UTC day with the most unserved load; the
// busiest day when no step was under-provisioned).
func WriteChart(w io.Writer, r *Result) error {
	bw := bufio.NewWriter(w)
	c := &chart{b: bw, res: r}
	c.draw()
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing chart: %w", err)
	}
	return nil
}

type chart struct {
	b   *bufio.Writer
	res *Result
}

func (c *chart) f(format string, a ...any) { fmt.Fprintf(c.b, format, a...) }

func (c *chart) draw() {
	r := c.res
	rows := r.Tide.Rows
	c.f(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	c.f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n",
		chartWidth, chartHeight, chartWidth, chartHeight)
	c.f(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	if len(rows) == 0 {
		c.f(`<text x="20" y="40">no data</text></svg>` + "\n")
		return
	}
	m := r.Tide.Metrics
	c.f(`<text x="%d" y="24" font-size="16" font-weight="bold">%s</text>`+"\n", marginLeft,
		esc(fmt.Sprintf("tide simulate: role %s on %s", r.Role, r.Trace)))
	c.f(`<text x="%d" y="44" fill="#444">%s</text>`+"\n", marginLeft, esc(fmt.Sprintf(
		"step %s, lead %s, %g per host; tide: %.1f instance-hours (%.2f× oracle), %.2f%% of steps under-provisioned, %.3f%% of load unserved",
		r.Step, r.Lead, r.Capacity, m.InstanceHours, m.CostRatio, 100*m.UnderProvisionedShare, 100*m.UnservedFraction)))
	c.legend(60)

	from, to := rows[0].At, rows[len(rows)-1].At.Add(r.Step)
	c.panel(100, 380, rows, from, to, "whole trace", true)

	day, under, unserved, load := worstDay(rows, r.Step, r.Capacity)
	dayRows := rowsBetween(rows, day, day.Add(24*time.Hour))
	title := fmt.Sprintf("zoom: %s (UTC), the worst under-provisioned day: %d steps under-provisioned, %.2f%% of its load unserved",
		day.Format("Mon 2 Jan 2006"), under, 100*safeDiv(unserved, load))
	if under == 0 {
		title = fmt.Sprintf("zoom: %s (UTC), the busiest day (no step was under-provisioned)", day.Format("Mon 2 Jan 2006"))
	}
	c.panel(560, 320, dayRows, day, day.Add(24*time.Hour), title, false)
	c.f("</svg>\n")
}

func (c *chart) legend(y int) {
	items := []struct{ colour, label, kind string }{
		{colLoad, "load (min–max per pixel)", "band"},
		{colForecast, "forecast used by the decision", "line"},
		{colDesired, "desired × capacity", "line"},
		{colReady, "ready × capacity (band: min–max; line: lowest)", "line"},
		{colUnder, "under-provisioned steps", "tick"},
		{colGap, "no data (trace gap)", "band"},
	}
	x := marginLeft
	for _, it := range items {
		switch it.kind {
		case "band":
			c.f(`<rect x="%d" y="%d" width="18" height="10" fill="%s" fill-opacity="0.5"/>`, x, y-9, it.colour)
		case "line":
			c.f(`<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"/>`, x, y-4, x+18, y-4, it.colour)
		case "tick":
			c.f(`<rect x="%d" y="%d" width="3" height="10" fill="%s"/>`, x+7, y-9, it.colour)
		}
		c.f(`<text x="%d" y="%d">%s</text>`+"\n", x+24, y, esc(it.label))
		x += 34 + 6*len([]rune(it.label))
	}
}

// panel draws one time-series panel with its top at y and height h.
func (c *chart) panel(y, h int, rows []Row, from, to time.Time, title string, markGaps bool) {
	capacity := c.res.Capacity
	span := to.Sub(from)
	bins := make([]bin, plotWidth)
	for i := range bins {
		bins[i] = bin{loadMin: math.Inf(1), loadMax: math.Inf(-1), fcMax: math.NaN(), readyMin: math.MaxInt}
	}
	col := func(t time.Time) int {
		return min(plotWidth-1, max(0, int(float64(t.Sub(from))/float64(span)*plotWidth)))
	}
	top := 0.0
	step := c.res.Step
	for _, r := range rows {
		// A row covers its whole step: one column or less on long
		// traces, many columns when zoomed on hourly data.
		c0 := col(r.At)
		c1 := max(c0+1, min(plotWidth, int(math.Ceil(float64(r.At.Add(step).Sub(from))/float64(span)*plotWidth))))
		for ci := c0; ci < c1; ci++ {
			b := &bins[ci]
			b.n++
			b.loadMin, b.loadMax = math.Min(b.loadMin, r.Load), math.Max(b.loadMax, r.Load)
			if r.HasForecast() && (math.IsNaN(b.fcMax) || r.Forecast > b.fcMax) {
				b.fcMax = r.Forecast
			}
			b.desMax = max(b.desMax, r.Desired)
			b.readyMin, b.readyMax = min(b.readyMin, r.Ready), max(b.readyMax, r.Ready)
			if served := float64(r.Ready) * capacity; served < r.Load {
				b.under = true
			}
		}
		top = max(top, r.Load, float64(r.Desired)*capacity, float64(r.Ready)*capacity)
		if r.HasForecast() {
			top = max(top, r.Forecast)
		}
	}
	top, tick := niceScale(top)
	px := func(i int) float64 { return float64(marginLeft + i) }
	py := func(v float64) float64 { return float64(y+h) - v/top*float64(h) }

	c.f(`<text x="%d" y="%d" font-size="13" font-weight="bold">%s</text>`+"\n", marginLeft, y-8, esc(title))
	c.f(`<g class="plot"><rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n", marginLeft, y, plotWidth, h)
	// Horizontal grid and y labels.
	for v := 0.0; v <= top+tick/2; v += tick {
		yy := py(v)
		c.f(`<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>`, marginLeft, yy, marginLeft+plotWidth, yy)
		c.f(`<text x="%d" y="%.1f" text-anchor="end" fill="#444">%s</text>`+"\n", marginLeft-6, yy+4, formatCount(v))
	}
	c.f(`<text transform="translate(18,%d) rotate(-90)" text-anchor="middle" fill="#444">load per step</text>`+"\n", y+h/2)
	// Time axis.
	ticks, layout := timeTicks(from, to)
	for _, t := range ticks {
		xx := marginLeft + float64(t.Sub(from))/float64(span)*plotWidth
		c.f(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#eee"/>`, xx, y, xx, y+h)
		c.f(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#888"/>`, xx, y+h, xx, y+h+5)
		c.f(`<text x="%.1f" y="%d" text-anchor="middle" fill="#444">%s</text>`+"\n", xx, y+h+18, esc(t.Format(layout)))
	}
	// Gaps.
	if markGaps {
		for _, g := range c.res.Gaps {
			a, b := col(g.From), col(g.From.Add(time.Duration(g.Missing)*c.res.Step))
			c.f(`<rect x="%.1f" y="%d" width="%d" height="%d" fill="%s" fill-opacity="0.5"><title>%s</title></rect>`+"\n",
				px(a), y, max(1, b-a), h, colGap, esc(fmt.Sprintf("no data from %s (%d steps)", g.From.Format(time.RFC3339), g.Missing)))
		}
	}
	// Envelopes: load, then ready capacity, one polygon per run of columns
	// with data.
	c.band(bins, px, py, colLoad, 0.55, func(b bin) (float64, float64) { return b.loadMin, b.loadMax })
	c.band(bins, px, py, colReady, 0.2, func(b bin) (float64, float64) {
		return float64(b.readyMin) * capacity, float64(b.readyMax) * capacity
	})
	c.line(bins, px, py, colReady, 1.6, func(b bin) (float64, bool) { return float64(b.readyMin) * capacity, true })
	c.line(bins, px, py, colDesired, 1.2, func(b bin) (float64, bool) { return float64(b.desMax) * capacity, true })
	c.line(bins, px, py, colForecast, 1.2, func(b bin) (float64, bool) { return b.fcMax, !math.IsNaN(b.fcMax) })
	// Under-provisioned marks along the bottom.
	for i, b := range bins {
		if b.under {
			c.f(`<rect x="%.1f" y="%d" width="1" height="8" fill="%s"/>`, px(i), y+h-8, colUnder)
		}
	}
	c.f("</g>\n")
}

// band fills the area between the low and high values of each column.
func (c *chart) band(bins []bin, px func(int) float64, py func(float64) float64, colour string, opacity float64, lohi func(bin) (float64, float64)) {
	for _, run := range runs(bins) {
		var sb strings.Builder
		for i := run[0]; i < run[1]; i++ {
			_, hi := lohi(bins[i])
			fmt.Fprintf(&sb, "%.1f,%.1f %.1f,%.1f ", px(i), py(hi), px(i)+1, py(hi))
		}
		for i := run[1] - 1; i >= run[0]; i-- {
			lo, _ := lohi(bins[i])
			fmt.Fprintf(&sb, "%.1f,%.1f %.1f,%.1f ", px(i)+1, py(lo), px(i), py(lo))
		}
		c.f(`<polygon points="%s" fill="%s" fill-opacity="%.2f" stroke="%s" stroke-width="0.5" stroke-opacity="%.2f"/>`+"\n",
			sb.String(), colour, opacity, colour, opacity)
	}
}

// line draws a step line through the columns where value reports a value.
func (c *chart) line(bins []bin, px func(int) float64, py func(float64) float64, colour string, width float64, value func(bin) (float64, bool)) {
	var sb strings.Builder
	flush := func() {
		if sb.Len() > 0 {
			c.f(`<polyline points="%s" fill="none" stroke="%s" stroke-width="%.1f" stroke-linejoin="round"/>`+"\n", sb.String(), colour, width)
			sb.Reset()
		}
	}
	for i, b := range bins {
		v, ok := value(b)
		if b.n == 0 || !ok {
			flush()
			continue
		}
		fmt.Fprintf(&sb, "%.1f,%.1f %.1f,%.1f ", px(i), py(v), px(i)+1, py(v))
	}
	flush()
}

// runs returns [start, end) of the runs of columns that hold rows.
func runs(bins []bin) [][2]int {
	var out [][2]int
	start := -1
	for i, b := range bins {
		switch {
		case b.n > 0 && start < 0:
			start = i
		case b.n == 0 && start >= 0:
			out = append(out, [2]int{start, i})
			start = -1
		}
	}
	if start >= 0 {
		out = append(out, [2]int{start, len(bins)})
	}
	return out
}

// worstDay is the UTC day with the most unserved load (ties: more
// under-provisioned steps); without any, the day with the highest load.
func worstDay(rows []Row, step time.Duration, capacity float64) (day time.Time, under int, unserved, load float64) {
	type agg struct {
		under           int
		unserved, total float64
		peak            float64
	}
	days := map[time.Time]*agg{}
	var order []time.Time
	for _, r := range rows {
		d := r.At.UTC().Truncate(24 * time.Hour)
		a := days[d]
		if a == nil {
			a = &agg{}
			days[d] = a
			order = append(order, d)
		}
		if served := float64(r.Ready) * capacity; served < r.Load {
			a.under++
			a.unserved += r.Load - served
		}
		a.total += r.Load
		a.peak = max(a.peak, r.Load)
	}
	best := order[0]
	for _, d := range order[1:] {
		a, b := days[d], days[best]
		if a.unserved > b.unserved || (a.unserved == b.unserved && a.under > b.under) ||
			(b.under == 0 && a.under == 0 && a.peak > b.peak) {
			best = d
		}
	}
	a := days[best]
	return best, a.under, a.unserved, a.total
}

func rowsBetween(rows []Row, from, to time.Time) []Row {
	i := 0
	for i < len(rows) && rows[i].At.Before(from) {
		i++
	}
	j := i
	for j < len(rows) && rows[j].At.Before(to) {
		j++
	}
	return rows[i:j]
}

// niceScale rounds top up to a multiple of a 1-2-5 tick giving about 5 ticks.
func niceScale(top float64) (float64, float64) {
	if top <= 0 {
		return 1, 0.2
	}
	raw := top / 5
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	tick := mag
	for _, m := range []float64{1, 2, 5, 10} {
		if m*mag >= raw {
			tick = m * mag
			break
		}
	}
	return math.Ceil(top/tick-1e-9) * tick, tick
}

// timeTicks returns about 4 to 14 tick instants in [from, to], on round
// UTC hours, days, Mondays or first days of months, and the layout of their
// labels.
func timeTicks(from, to time.Time) ([]time.Time, string) {
	const day = 24 * time.Hour
	span := to.Sub(from)
	var ticks []time.Time
	for _, d := range []time.Duration{time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, day, 2 * day, 7 * day, 14 * day} {
		if span/d > 14 {
			continue
		}
		t := from.UTC().Truncate(day)
		if d >= 7*day {
			for t.Weekday() != time.Monday {
				t = t.Add(-day)
			}
		}
		for ; !t.After(to); t = t.Add(d) {
			if !t.Before(from) {
				ticks = append(ticks, t)
			}
		}
		switch {
		case span <= 2*day:
			return ticks, "15:04"
		case d < day:
			return ticks, "Mon Jan 2 15:04"
		}
		return ticks, "Mon Jan 2"
	}
	for _, months := range []int{1, 2, 3, 6, 12, 24, 60, 120} {
		if span/(time.Duration(months)*30*day) > 14 {
			continue
		}
		f := from.UTC()
		t := time.Date(f.Year(), f.Month(), 1, 0, 0, 0, 0, time.UTC)
		if months >= 12 {
			t = time.Date(f.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
		}
		for ; !t.After(to); t = t.AddDate(0, months, 0) {
			if !t.Before(from) {
				ticks = append(ticks, t)
			}
		}
		if months >= 12 {
			return ticks, "2006"
		}
		return ticks, "Jan 2006"
	}
	return []time.Time{from, to}, "2006-01-02"
}

func formatCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%gk", v/1e3)
	}
	return fmt.Sprintf("%g", v)
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func esc(s string) string { return html.EscapeString(s) }
