package policies

import (
	"fmt"
	"strings"
	"time"
)

// describeCron says when w is open in words a person reads at a glance:
// "Mon-Fri 08:00-18:00 Europe/Brussels", "Fri 18:00 for 60h UTC". Schedules
// it cannot put simply are quoted as written.
func describeCron(w *CronWindow) string {
	tz := w.loc.String()
	sd, st, sok := simpleSchedule(w.start)
	if w.end != nil {
		ed, et, eok := simpleSchedule(w.end)
		switch {
		case sok && eok && sd == ed:
			return fmt.Sprintf("%s %s-%s %s", sd, st, et, tz)
		case sok && eok:
			return fmt.Sprintf("%s %s to %s %s %s", sd, st, ed, et, tz)
		}
		return fmt.Sprintf("from %q until %q %s", w.start.expr, w.end.expr, tz)
	}
	dur := formatDuration(w.spec.Duration)
	if w.wallClock {
		dur += " of local clock"
	}
	if sok {
		return fmt.Sprintf("%s %s for %s %s", sd, st, dur, tz)
	}
	return fmt.Sprintf("%q for %s %s", w.start.expr, dur, tz)
}

// simpleSchedule returns the days and the clock reading of a schedule that
// fires once on the days it fires ("Mon-Fri", "08:00").
func simpleSchedule(s *schedule) (days, clock string, ok bool) {
	if len(s.hours) != 1 || len(s.minutes) != 1 {
		return "", "", false
	}
	clock = fmt.Sprintf("%02d:%02d", s.hours[0], s.minutes[0])
	sp := s.spec
	if sp.Month&starBit == 0 {
		return "", "", false
	}
	domStar, dowStar := sp.Dom&starBit != 0, sp.Dow&starBit != 0
	switch {
	case domStar && dowStar:
		return "daily", clock, true
	case domStar:
		return weekdays(sp.Dow), clock, true
	case dowStar && onesCount(sp.Dom) == 1:
		for d := 1; d <= 31; d++ {
			if sp.Dom&(1<<uint(d)) != 0 {
				return fmt.Sprintf("monthly on day %d", d), clock, true
			}
		}
	}
	return "", "", false
}

// weekdays renders a day-of-week bit set Monday first: "Mon-Fri",
// "Sat,Sun", "Mon,Wed".
func weekdays(bits uint64) string {
	order := []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday, time.Saturday, time.Sunday}
	var parts []string
	for i := 0; i < len(order); {
		if bits&(1<<uint(order[i])) == 0 {
			i++
			continue
		}
		j := i
		for j+1 < len(order) && bits&(1<<uint(order[j+1])) != 0 {
			j++
		}
		switch {
		case j-i >= 2:
			parts = append(parts, short(order[i])+"-"+short(order[j]))
		default:
			for k := i; k <= j; k++ {
				parts = append(parts, short(order[k]))
			}
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}

func short(d time.Weekday) string { return d.String()[:3] }

// formatDuration writes 60h rather than 60h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// formatClose writes the closing time, with its date only when it differs
// from the opening's.
func formatClose(open, closes time.Time) string {
	closes = closes.In(open.Location())
	y1, m1, d1 := open.Date()
	if y2, m2, d2 := closes.Date(); y1 == y2 && m1 == m2 && d1 == d2 {
		return closes.Format("15:04 MST")
	}
	return closes.Format("2006-01-02 15:04 MST")
}
