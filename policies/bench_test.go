package policies

import (
	"math/rand/v2"
	"testing"
	"time"
)

func benchWindows(b *testing.B) []Window {
	return []Window{
		mustCron(b, CronSpec{Name: "business", Start: "0 8 * * MON-FRI", End: "0 18 * * MON-FRI", TimeZone: "Europe/Brussels", Count: 6}),
		mustCron(b, CronSpec{Name: "night", Start: "0 22 * * *", End: "0 6 * * *", TimeZone: "Europe/Brussels", Count: 1, Mode: Exact}),
		mustCron(b, CronSpec{Name: "drp", Start: "0 18 * * FRI", Duration: 60 * time.Hour, TimeZone: "Europe/Brussels", Count: 8}),
	}
}

// BenchmarkCronWindowActiveAt simulates 30 days in 1-minute steps (43,200
// steps) over three cron windows, across the October clock change; one op is
// the whole simulation.
func BenchmarkCronWindowActiveAt(b *testing.B) {
	ws := benchWindows(b)
	start := utc(2026, 10, 10, 0, 0)
	for b.Loop() {
		active := 0
		for i := range 43200 {
			now := start.Add(time.Duration(i) * time.Minute)
			for _, w := range ws {
				if _, ok := w.ActiveAt(now); ok {
					active++
				}
			}
		}
		if active == 0 {
			b.Fatal("no window was ever active")
		}
	}
}

// BenchmarkCronWindowActiveAtRandom asks about random instants in a year, so
// that every call misses the cache: the cost of one uncached answer.
func BenchmarkCronWindowActiveAtRandom(b *testing.B) {
	ws := benchWindows(b)
	rng := rand.New(rand.NewPCG(1, 2))
	start := utc(2026, 1, 1, 0, 0)
	for b.Loop() {
		now := start.Add(time.Duration(rng.Int64N(int64(365 * 24 * time.Hour))))
		for _, w := range ws {
			w.ActiveAt(now)
		}
	}
}

// BenchmarkNewCronWindow is the cost of checking a spec at load time.
func BenchmarkNewCronWindow(b *testing.B) {
	for b.Loop() {
		mustCron(b, CronSpec{Name: "closing", Start: "0 0 1 * *", End: "0 0 8 * *", TimeZone: "Europe/Brussels"})
	}
}

// BenchmarkExactConflictsYear is what checking a schedule for conflicting
// exact windows over a year costs at load time.
func BenchmarkExactConflictsYear(b *testing.B) {
	ws := []Window{
		mustCron(b, CronSpec{Name: "day", Start: "0 8 * * MON-FRI", End: "0 18 * * MON-FRI", TimeZone: "Europe/Brussels", Count: 6, Mode: Exact}),
		mustCron(b, CronSpec{Name: "batch", Start: "0 16 * * FRI", Duration: 4 * time.Hour, TimeZone: "Europe/Brussels", Count: 9, Mode: Exact}),
		mustCron(b, CronSpec{Name: "night", Start: "0 22 * * *", End: "0 6 * * *", TimeZone: "Europe/Brussels", Count: 1, Mode: Exact}),
	}
	for b.Loop() {
		if len(ExactConflicts(ws, utc(2026, 1, 1, 0, 0), 366*24*time.Hour)) != 53 {
			b.Fatal("want a conflict every Friday")
		}
	}
}
