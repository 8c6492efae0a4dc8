package scheduler

import (
	"time"

	"github.com/tideops/tide/config"
)

// ParamsFor builds a role's decision parameters from its schedule file.
// Defaults are applied by config; ParamsFor only fills what config leaves
// to the decision (the target falls back to the role's capacity).
func ParamsFor(s *config.Schedule, r config.Role) Params {
	p := Params{
		Role:          r.Name,
		Min:           r.Min,
		Max:           r.Max,
		Interval:      s.Interval.D(),
		Stabilization: r.Policies.ScaleDown.Stabilization.D(),
		MaxStep:       r.Policies.ScaleDown.MaxStep,
	}
	if p.Interval <= 0 {
		p.Interval = time.Minute
	}
	if lp := r.Policies.Load; lp != nil {
		p.LoadDriven = true
		p.Target = lp.TargetPerInstance
		if p.Target <= 0 {
			p.Target = r.Capacity
		}
		p.Headroom = lp.Headroom
		p.Lead = lp.LeadTime.D()
		p.MaxAge = lp.MaxAge.D()
		p.Predict = lp.Predict == nil || *lp.Predict
	}
	return p
}
