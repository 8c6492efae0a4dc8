package loadgen

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/tideops/tide/trace"
)

// Options tune a Generator. The zero value is usable.
type Options struct {
	// Seed selects the noise and the flash crowds' instants.
	Seed int64
	// Peak is the load at the profile's busiest regular moment, before
	// noise. Default 1000.
	Peak float64
	// Location is the time zone of office hours, weekends and holidays.
	// Default UTC.
	Location *time.Location
	// Noise is the relative amplitude of the noise (0.05 = about 5%).
	// Zero means the default 0.05; a negative value turns noise off.
	Noise float64
}

// Generator produces one profile's load.
type Generator struct {
	profile string
	shape   func(g *Generator, t time.Time) float64
	peak    float64
	noise   float64
	seed    uint64
	loc     *time.Location
}

var profiles = map[string]struct {
	summary string
	shape   func(g *Generator, t time.Time) float64
}{
	"office":       {"office hours on working days with a lunch dip; nights, weekends and holidays low", (*Generator).office},
	"weekly-batch": {"a heavy batch from Friday evening through the weekend over light weekday use", (*Generator).weeklyBatch},
	"monthly":      {"a spike on the monthly publication day (third working day), decaying over the next days", (*Generator).monthly},
	"spike":        {"office hours with one sudden flash crowd a week at a seed-chosen working hour", (*Generator).flash},
}

// Profiles lists the profile names, sorted.
func Profiles() []string {
	names := make([]string, 0, len(profiles))
	for n := range profiles {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Describe returns a one-line description of a profile ("" if unknown).
func Describe(profile string) string { return profiles[profile].summary }

// New returns a generator for a profile: office, weekly-batch, monthly or
// spike.
func New(profile string, o Options) (*Generator, error) {
	p, ok := profiles[profile]
	if !ok {
		return nil, fmt.Errorf("unknown load profile %q: want one of %s", profile, strings.Join(Profiles(), ", "))
	}
	if o.Peak < 0 || math.IsNaN(o.Peak) || math.IsInf(o.Peak, 0) {
		return nil, fmt.Errorf("load profile %s: peak must be a positive number, got %g", profile, o.Peak)
	}
	g := &Generator{profile: profile, shape: p.shape, peak: o.Peak, noise: o.Noise, seed: uint64(o.Seed), loc: o.Location}
	if g.peak == 0 {
		g.peak = 1000
	}
	switch {
	case g.noise == 0:
		g.noise = 0.05
	case g.noise < 0:
		g.noise = 0
	}
	if g.loc == nil {
		g.loc = time.UTC
	}
	return g, nil
}

// Profile returns the generator's profile name.
func (g *Generator) Profile() string { return g.profile }

// Peak returns the load at the profile's busiest regular moment, before noise.
func (g *Generator) Peak() float64 { return g.peak }

// At returns the load at t. It depends only on t and the options.
func (g *Generator) At(t time.Time) float64 {
	v := g.shape(g, t) * g.peak
	if g.noise > 0 {
		// Slow wander (knots every 20 minutes) plus fast jitter.
		v *= 1 + g.noise*(smoothNoise(g.seed, t, 20*time.Minute)+0.6*gauss(g.seed^0x5bd1e995, uint64(t.UnixNano())))
	}
	return max(0, v)
}

// Series samples At from from (inclusive) to to (exclusive) every step.
func (g *Generator) Series(from, to time.Time, step time.Duration) *trace.Trace {
	tr := &trace.Trace{Name: "synthetic:" + g.profile, Step: step}
	if step <= 0 {
		return tr
	}
	for t := from.UTC(); t.Before(to); t = t.Add(step) {
		tr.Points = append(tr.Points, trace.Point{At: t, Value: math.Round(g.At(t)*100) / 100})
	}
	return tr
}

// local returns the local hour of day (fractional) and whether t falls on
// a working day.
func (g *Generator) local(t time.Time) (float64, bool, time.Time) {
	lt := t.In(g.loc)
	h := float64(lt.Hour()) + float64(lt.Minute())/60 + float64(lt.Second())/3600
	return h, workingDay(lt), lt
}

// officeShape is the share of office users active at local hour h of a
// working day: ramp up 07:00-09:30, lunch dip around 12:45, ramp down
// 16:30-19:00.
func officeShape(h float64) float64 {
	day := smoothstep(h, 7, 9.5) * (1 - smoothstep(h, 16.5, 19))
	lunch := 1 - 0.35*math.Exp(-sq((h-12.75)/0.5)/2)
	// Mornings are a little busier than afternoons.
	tilt := 1 - 0.08*smoothstep(h, 11, 16)
	return day * lunch * tilt
}

func (g *Generator) office(t time.Time) float64 {
	h, work, _ := g.local(t)
	if !work {
		return 0.05 + 0.04*smoothstep(h, 9, 11)*(1-smoothstep(h, 17, 20))
	}
	return 0.05 + 0.95*officeShape(h)
}

func (g *Generator) weeklyBatch(t time.Time) float64 {
	h, work, lt := g.local(t)
	users := 0.05
	if work {
		users += 0.2 * officeShape(h)
	}
	// Weekly batch: Friday 18:00 to Sunday 20:00 local, in waves.
	fri := time.Date(lt.Year(), lt.Month(), lt.Day(), 18, 0, 0, 0, g.loc)
	fri = fri.AddDate(0, 0, -int((lt.Weekday()+7-time.Friday)%7))
	hours := lt.Sub(fri).Hours() // hours since the last Friday 18:00
	batch := 0.0
	if hours >= 0 && hours < 50 {
		on := smoothstep(hours, 0, 0.5) * (1 - smoothstep(hours, 48, 50))
		waves := 0.85 + 0.15*math.Cos(2*math.Pi*hours/8)
		batch = 0.95 * on * waves
	}
	// A light nightly batch on working days, 02:00-04:00.
	nightly := 0.0
	if work {
		nightly = 0.2 * smoothstep(h, 2, 2.25) * (1 - smoothstep(h, 3.75, 4))
	}
	return users + max(batch, nightly)
}

func (g *Generator) monthly(t time.Time) float64 {
	h, work, lt := g.local(t)
	v := 0.04
	if work {
		v += 0.16 * officeShape(h)
	}
	// Readers of this month's and last month's publications.
	for _, m := range []int{0, -1} {
		first := time.Date(lt.Year(), lt.Month()+time.Month(m), 1, 0, 0, 0, 0, g.loc)
		pub := PublicationDay(first.Year(), first.Month(), g.loc).Add(9 * time.Hour)
		since := lt.Sub(pub).Hours()
		if since < 0 {
			continue
		}
		attack := smoothstep(since, 0, 0.25)
		decay := math.Exp(-since / 20)
		readers := 0.35 + 0.65*smoothstep(h, 7, 9)*(1-smoothstep(h, 19, 23))
		v += 0.8 * attack * decay * readers
	}
	return v
}

// PublicationDay is the monthly profile's publication day: the third
// working day of the month (weekends and holidays skipped), at midnight in
// loc.
func PublicationDay(year int, month time.Month, loc *time.Location) time.Time {
	d := time.Date(year, month, 1, 0, 0, 0, 0, loc)
	for n := 0; ; d = d.AddDate(0, 0, 1) {
		if workingDay(d) {
			if n++; n == 3 {
				return d
			}
		}
	}
}

func (g *Generator) flash(t time.Time) float64 {
	v := 0.03 + 0.22*g.office(t)
	// One flash crowd a week; look at this week's and last week's.
	w := weekIndex(t)
	for _, k := range []int64{w, w - 1} {
		start := g.flashStart(k)
		since := t.Sub(start).Minutes()
		if since < 0 {
			continue
		}
		v += 0.75 * smoothstep(since, 0, 3) * math.Exp(-since/60)
	}
	return v
}

// epochMonday is a Monday, the origin of week numbers.
var epochMonday = time.Date(1970, 1, 5, 0, 0, 0, 0, time.UTC)

func weekIndex(t time.Time) int64 {
	return int64(math.Floor(t.Sub(epochMonday).Hours() / (7 * 24)))
}

// flashStart is the instant of week k's flash crowd: a working hour
// (09:00-17:00 local, Monday to Friday) chosen by the seed.
func (g *Generator) flashStart(k int64) time.Time {
	r := mix(g.seed ^ mix(uint64(k)*0x9e3779b97f4a7c15+0xf1a5))
	day := int(r % 5)
	minute := int((r >> 8) % (8 * 60))
	monday := epochMonday.Add(time.Duration(k) * 7 * 24 * time.Hour).In(g.loc)
	d := time.Date(monday.Year(), monday.Month(), monday.Day()+day, 9, 0, 0, 0, g.loc)
	return d.Add(time.Duration(minute) * time.Minute)
}

// workingDay reports whether the local date of t is Monday to Friday and
// not a holiday.
func workingDay(t time.Time) bool {
	switch t.Weekday() {
	case time.Saturday, time.Sunday:
		return false
	}
	return !holiday(t.Year(), t.Month(), t.Day())
}

// holiday reports the few holidays common to most of Europe: New Year,
// Good Friday, Easter Monday, Labour Day, Christmas and Boxing Day.
func holiday(y int, m time.Month, d int) bool {
	switch {
	case m == time.January && d == 1, m == time.May && d == 1,
		m == time.December && (d == 25 || d == 26):
		return true
	}
	e := easter(y)
	for _, off := range []int{-2, 1} {
		h := e.AddDate(0, 0, off)
		if h.Month() == m && h.Day() == d {
			return true
		}
	}
	return false
}

// easter is Easter Sunday in the Gregorian calendar (anonymous algorithm).
func easter(y int) time.Time {
	a, b, c := y%19, y/100, y%100
	d, e := b/4, b%4
	f := (b + 8) / 25
	g := (b - f + 1) / 3
	h := (19*a + b - d - g + 15) % 30
	i, k := c/4, c%4
	l := (32 + 2*e + 2*i - h - k) % 7
	m := (a + 11*h + 22*l) / 451
	month := (h + l - 7*m + 114) / 31
	day := (h+l-7*m+114)%31 + 1
	return time.Date(y, time.Month(month), day, 0, 0, 0, 0, time.UTC)
}

func smoothstep(x, a, b float64) float64 {
	switch {
	case x <= a:
		return 0
	case x >= b:
		return 1
	}
	u := (x - a) / (b - a)
	return u * u * (3 - 2*u)
}

func sq(x float64) float64 { return x * x }

// mix is splitmix64's finaliser: a good 64-bit hash.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// uniform maps a hash of (seed, k) to [-1, 1).
func uniform(seed, k uint64) float64 {
	return float64(mix(seed^mix(k))>>11)/(1<<52) - 1
}

// gauss is a standard normal deviate from a hash of (seed, k), clipped to
// ±3 (sum of four uniforms, rescaled).
func gauss(seed, k uint64) float64 {
	s := 0.0
	for i := uint64(0); i < 4; i++ {
		s += uniform(seed+i*0x632be59bd9b4e019, k)
	}
	return max(-3, min(3, s*math.Sqrt(3)/2))
}

// smoothNoise is value noise in [-1, 1] with knots every period,
// interpolated with a cosine.
func smoothNoise(seed uint64, t time.Time, period time.Duration) float64 {
	x := float64(t.UnixNano()) / float64(period)
	k := math.Floor(x)
	u := (1 - math.Cos(math.Pi*(x-k))) / 2
	a := uniform(seed^0x1234567, uint64(int64(k)))
	b := uniform(seed^0x1234567, uint64(int64(k)+1))
	return a*(1-u) + b*u
}
