package policies

import (
	"math/bits"
	"time"

	"github.com/robfig/cron/v3"
)

// This file computes cron fire times in wall-clock terms. robfig/cron's own
// SpecSchedule.Next walks real time, so a fire time inside a skipped hour
// (02:30 on the spring-forward day) is lost and one inside a repeated hour
// (02:30 on the fall-back day in Europe) fires twice. Here the schedule is
// matched against civil dates and clock readings, and each matching reading
// is then placed on the time line: a reading that does not exist fires at the
// first instant after the gap, a reading that exists twice fires at its first
// occurrence only.

const secondsPerDay = 86400

// day is a civil date counted in days since 1970-01-01.
type day int64

// civilDay returns the day number of y-m-d (proleptic Gregorian).
func civilDay(y int, m time.Month, d int) day {
	// Howard Hinnant's days_from_civil.
	yy := int64(y)
	if m <= 2 {
		yy--
	}
	era := yy / 400
	if yy < 0 && yy%400 != 0 {
		era--
	}
	yoe := yy - era*400
	mm := int64(m)
	if mm > 2 {
		mm -= 3
	} else {
		mm += 9
	}
	doy := (153*mm+2)/5 + int64(d) - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return day(era*146097 + doe - 719468)
}

// date returns the year, month and day of d.
func (d day) date() (int, time.Month, int) {
	// Howard Hinnant's civil_from_days.
	z := int64(d) + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	dd := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return int(y), time.Month(m), int(dd)
}

// weekday returns the day of the week of d.
func (d day) weekday() time.Weekday {
	w := (int64(d) + 4) % 7 // 1970-01-01 was a Thursday
	if w < 0 {
		w += 7
	}
	return time.Weekday(w)
}

// schedule is a parsed cron expression evaluated on wall clocks in loc.
type schedule struct {
	expr string
	spec *cron.SpecSchedule
	loc  *time.Location
	// hours and minutes are the matching hours and minutes, ascending.
	hours, minutes []int
}

func newSchedule(expr string, spec *cron.SpecSchedule, loc *time.Location) *schedule {
	s := &schedule{expr: expr, spec: spec, loc: loc}
	for h := 0; h < 24; h++ {
		if spec.Hour&(1<<uint(h)) != 0 {
			s.hours = append(s.hours, h)
		}
	}
	for m := 0; m < 60; m++ {
		if spec.Minute&(1<<uint(m)) != 0 {
			s.minutes = append(s.minutes, m)
		}
	}
	return s
}

// dayMatches reports whether the schedule fires on civil day d, with cron's
// rule: when both day of month and day of week are restricted, either may
// match.
func (s *schedule) dayMatches(d day) bool {
	_, m, dd := d.date()
	return s.dateMatches(m, dd, d.weekday())
}

func (s *schedule) dateMatches(m time.Month, dd int, wd time.Weekday) bool {
	sp := s.spec
	if sp.Month&(1<<uint(m)) == 0 {
		return false
	}
	domMatch := sp.Dom&(1<<uint(dd)) != 0
	dowMatch := sp.Dow&(1<<uint(wd)) != 0
	if sp.Dom&starBit != 0 || sp.Dow&starBit != 0 {
		return domMatch && dowMatch
	}
	return domMatch || dowMatch
}

// starBit mirrors robfig/cron's marker for a field written as * or ?.
const starBit = 1 << 63

// fire is one fire time: the wall-clock reading the schedule names (seconds
// since 1970-01-01 00:00 on a clock in loc) and the instant it happens.
type fire struct {
	wall int64
	at   int64 // Unix seconds
}

// resolve places the wall-clock reading wall (seconds, local) on the time
// line: a reading that happens once gives its instant; one that happens twice
// (clocks set back) gives the first; one that never happens (clocks set
// forward) gives the first instant after the gap.
func resolve(loc *time.Location, wall int64) int64 {
	before := offsetAt(loc, wall-secondsPerDay)
	after := offsetAt(loc, wall+secondsPerDay)
	if before == after && offsetAt(loc, wall-before) == before {
		return wall - before
	}
	best, ok := int64(0), false
	for _, off := range [2]int64{before, after} {
		at := wall - off
		if offsetAt(loc, at) == off && (!ok || at < best) {
			best, ok = at, true
		}
	}
	if ok {
		return best
	}
	// In a gap: at wall-before the clocks already moved forward; the zone
	// that starts there starts at the end of the gap.
	start, _ := time.Unix(wall-before, 0).In(loc).ZoneBounds()
	return start.Unix()
}

func offsetAt(loc *time.Location, unix int64) int64 {
	_, off := time.Unix(unix, 0).In(loc).Zone()
	return int64(off)
}

// wallOf returns the wall-clock reading of instant t in loc.
func wallOf(loc *time.Location, t time.Time) int64 {
	_, off := t.In(loc).Zone()
	return t.Unix() + int64(off)
}

// dayOfWall returns the civil day of a wall-clock reading.
func dayOfWall(wall int64) day {
	d := wall / secondsPerDay
	if wall < 0 && wall%secondsPerDay != 0 {
		d--
	}
	return day(d)
}

// prev returns the latest fire at or before t, looking back no further than
// floor (inclusive).
func (s *schedule) prev(t time.Time, floor time.Time) (fire, bool) {
	tu := t.Unix() // fires are whole seconds: fire <= t iff fire <= t.Unix()
	fu := floor.Unix()
	first := dayOfWall(wallOf(s.loc, t)) + 1
	last := dayOfWall(wallOf(s.loc, floor)) - 1
	for d := first; d >= last; d-- {
		if !s.dayMatches(d) {
			continue
		}
		base := int64(d) * secondsPerDay
		for hi := len(s.hours) - 1; hi >= 0; hi-- {
			for mi := len(s.minutes) - 1; mi >= 0; mi-- {
				wall := base + int64(s.hours[hi])*3600 + int64(s.minutes[mi])*60
				at := resolve(s.loc, wall)
				if at > tu {
					continue
				}
				if at < fu {
					return fire{}, false
				}
				return fire{wall: wall, at: at}, true
			}
		}
	}
	return fire{}, false
}

// next returns the first fire strictly after t, looking no further than
// ceil (inclusive).
func (s *schedule) next(t time.Time, ceil time.Time) (fire, bool) {
	tu := t.Unix()
	cu := ceil.Unix()
	first := dayOfWall(wallOf(s.loc, t)) - 1
	last := dayOfWall(wallOf(s.loc, ceil)) + 1
	for d := first; d <= last; d++ {
		if !s.dayMatches(d) {
			continue
		}
		base := int64(d) * secondsPerDay
		for _, h := range s.hours {
			for _, m := range s.minutes {
				wall := base + int64(h)*3600 + int64(m)*60
				at := resolve(s.loc, wall)
				if at <= tu {
					continue
				}
				if at > cu {
					return fire{}, false
				}
				return fire{wall: wall, at: at}, true
			}
		}
	}
	return fire{}, false
}

// between calls fn for each fire in [from, to), ascending, each instant once
// (several readings inside one skipped hour fire together once).
func (s *schedule) between(from, to time.Time, fn func(fire)) {
	// Fires are whole seconds: at >= from iff at >= fu, at < to iff at < tu.
	fu, tu := from.Unix(), to.Unix()
	if from.Nanosecond() != 0 {
		fu++
	}
	if to.Nanosecond() != 0 {
		tu++
	}
	first := dayOfWall(wallOf(s.loc, from)) - 1
	last := dayOfWall(wallOf(s.loc, to)) + 1
	lastAt, any := int64(0), false
	for d := first; d <= last; d++ {
		if !s.dayMatches(d) {
			continue
		}
		base := int64(d) * secondsPerDay
		for _, h := range s.hours {
			for _, m := range s.minutes {
				wall := base + int64(h)*3600 + int64(m)*60
				at := resolve(s.loc, wall)
				if at >= tu {
					return
				}
				if at < fu || (any && at == lastAt) {
					continue
				}
				lastAt, any = at, true
				fn(fire{wall: wall, at: at})
			}
		}
	}
}

// maxDayGap returns the longest run, in days, from one matching day to the
// next, or -1 when no day matches. It looks at a full 400-year Gregorian
// cycle (after which dates and weekdays repeat), or at a shorter cycle when
// the schedule ignores months or weekdays.
func (s *schedule) maxDayGap() int {
	cycle := 146097
	allMonths := s.spec.Month&0x1ffe == 0x1ffe
	switch {
	case allMonths && s.spec.Dom&starBit != 0:
		cycle = 7 // only the weekday counts
	case allMonths && s.spec.Dow&starBit != 0:
		cycle = 1461 // only the day of the month: leap years repeat every 4 (2100 is like any common year)
	}
	return s.scanDays(cycle, false)
}

// firesEver reports whether the schedule matches any day at all.
func (s *schedule) firesEver() bool { return s.scanDays(146097, true) >= 0 }

// scanDays walks cycle days from 2000-01-01 and returns the longest gap
// between matching days, wrapping around the cycle; or 0 at the first match
// when first is set; or -1 when no day matches.
func (s *schedule) scanDays(cycle int, first bool) int {
	y, m, dd := 2000, time.January, 1
	wd := time.Saturday // 2000-01-01
	firstMatch, lastMatch, maxGap := -1, -1, 0
	for i := 0; i < cycle; i++ {
		if s.dateMatches(m, dd, wd) {
			if first {
				return 0
			}
			if lastMatch >= 0 && i-lastMatch > maxGap {
				maxGap = i - lastMatch
			}
			if firstMatch < 0 {
				firstMatch = i
			}
			lastMatch = i
		}
		wd = (wd + 1) % 7
		dd++
		if dd > daysIn(y, m) {
			dd = 1
			m++
			if m > time.December {
				m = time.January
				y++
			}
		}
	}
	if firstMatch < 0 {
		return -1
	}
	if wrap := firstMatch + cycle - lastMatch; wrap > maxGap {
		maxGap = wrap
	}
	return maxGap
}

func daysIn(y int, m time.Month) int {
	switch m {
	case time.February:
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	case time.April, time.June, time.September, time.November:
		return 30
	}
	return 31
}

func onesCount(x uint64) int { return bits.OnesCount64(x &^ starBit) }
