package config

import (
	"fmt"
	"strings"

	"github.com/robfig/cron/v3"
)

// cronParser reads the standard five fields (minute hour day-of-month month
// day-of-week) and the @yearly, @monthly, @weekly, @daily and @hourly
// descriptors, as the policies package does.
var cronParser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// cronStar is the bit robfig/cron sets in a field written as "*".
const cronStar = 1 << 63

var cronFields = [5]string{"minute", "hour", "day of month", "month", "day of week"}

// parseCron parses a window's cron expression. On failure the error reads
// `bad cron "0 25 * * *": hour out of range`, naming the field at fault.
func parseCron(spec string) (sched cron.Schedule, err error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("bad cron %q: %s", spec, fmt.Sprintf(format, args...))
	}
	trimmed := strings.TrimSpace(spec)
	switch {
	case strings.HasPrefix(trimmed, "TZ=") || strings.HasPrefix(trimmed, "CRON_TZ="):
		return nil, bad("set the time zone in the window's timezone field, not in the expression")
	case strings.HasPrefix(trimmed, "@every"):
		return nil, bad("@every does not name a time of day; use five fields or @daily, @weekly, @monthly")
	}
	sched, err = parseCronSafe(trimmed)
	if err == nil {
		return sched, nil
	}
	if strings.HasPrefix(trimmed, "@") {
		return nil, bad("unknown descriptor; want @yearly, @monthly, @weekly, @daily or @hourly")
	}
	fields := strings.Fields(trimmed)
	if len(fields) != 5 {
		return nil, bad("want 5 fields (minute hour day-of-month month day-of-week), found %d", len(fields))
	}
	// Parse each field on its own to name the one at fault.
	for i, f := range fields {
		probe := []string{"*", "*", "*", "*", "*"}
		probe[i] = f
		_, ferr := parseCronSafe(strings.Join(probe, " "))
		if ferr == nil {
			continue
		}
		msg := ferr.Error()
		if strings.Contains(msg, "above maximum") || strings.Contains(msg, "below minimum") {
			return nil, bad("%s out of range", cronFields[i])
		}
		return nil, bad("%s: %s", cronFields[i], msg)
	}
	return nil, bad("%s", err.Error())
}

// parseCronSafe calls the cron parser, turning a panic (the parser has had
// some on odd input) into an error.
func parseCronSafe(spec string) (sched cron.Schedule, err error) {
	defer func() {
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("unparseable expression")
		}
	}()
	return cronParser.Parse(spec)
}
