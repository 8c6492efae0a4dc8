package scheduler

import (
	"fmt"
	"time"
)

// Detail says in words what an input proposed or why a step changed the
// count. Decide keeps a detail's numbers and writes the sentence only when
// it is read (String, and JSON or YAML through MarshalText), so that the
// many decisions nobody reads, as in the simulator, cost no formatting. A
// Detail made by Text or decoded from JSON holds its sentence as is.
//
// In JSON a Detail is its sentence, a string: records stored before
// details were kept this way decode unchanged. Two details saying the same
// thing may be held differently: compare them by String.
type Detail struct {
	form detailForm
	// text is the sentence (formText), the load input's ending
	// (formReactive) or the forecast's model (formForecast, formForecastAfter).
	text string
	// x is the load (formReactive, formCarried) or the forecast's upper
	// bound (formForecast, formForecastAfter); q the forecast's quantile.
	x, q float64
	// n is the hosts the forecast needs (formForecast...), the hosts held
	// (formStabilization) or the limit (formMin, formMax, formStepLimit).
	n    int
	role *roleWords
}

// detailForm says which sentence a Detail writes from its numbers.
type detailForm uint8

const (
	formText detailForm = iota
	formReactive
	formCarried
	formForecast      // within the horizon
	formForecastAfter // from the lead time to the horizon
	formMin
	formMax
	formStabilization
	formStepLimit
)

// roleWords are the settings of a role that its details quote. They are
// fixed when the Role is made and shared, read only, by its records.
type roleWords struct {
	target, headroom float64
	stabilization    time.Duration
	// The forecast bounds the load within horizon, or from lead to horizon.
	lead, horizon time.Duration
}

// Text returns a Detail that says s.
func Text(s string) Detail { return Detail{text: s} }

// String returns the detail's sentence.
func (d Detail) String() string {
	switch d.form {
	case formReactive:
		return fmt.Sprintf("load %.4g + %.0f%% headroom at %.4g per host", d.x, d.role.headroom*100, d.role.target) + d.text
	case formCarried:
		return fmt.Sprintf("load %.4g at %.4g per host (the forecast's upper bound is the headroom)", d.x, d.role.target)
	case formForecast:
		return d.forecast(fmt.Sprintf("within %s", d.role.horizon))
	case formForecastAfter:
		return d.forecast(fmt.Sprintf("in %s to %s", d.role.lead, d.role.horizon))
	case formMin:
		return fmt.Sprintf("role minimum is %d", d.n)
	case formMax:
		return fmt.Sprintf("role maximum is %d", d.n)
	case formStabilization:
		return fmt.Sprintf("%d hosts were wanted within the last %s", d.n, d.role.stabilization)
	case formStepLimit:
		return fmt.Sprintf("at most %d hosts removed per decision", d.n)
	}
	return d.text
}

// MarshalText returns the sentence; JSON encodes it as a string, escaped
// as any other string.
func (d Detail) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText sets the detail to the sentence in text.
func (d *Detail) UnmarshalText(text []byte) error {
	*d = Detail{text: string(text)}
	return nil
}

func (d Detail) forecast(window string) string {
	return fmt.Sprintf("forecast p%.0f %.4g %s: %d hosts needed at %.4g per host (%s)", d.q*100, d.x, window, d.n, d.role.target, d.text)
}
