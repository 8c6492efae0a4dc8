package config

import (
	"fmt"
	"time"
)

// Defaults for fields a schedule file leaves out.
const (
	DefaultProvider      = "local"
	DefaultDataPath      = "/mnt"
	DefaultInterval      = time.Minute
	DefaultSSHPort       = 22
	DefaultLocalSSHPort  = 2222
	DefaultSSHTimeout    = 10 * time.Second
	DefaultSSHDeadline   = 5 * time.Minute
	DefaultKeepReleases  = 3
	DefaultBackupKeep    = 7
	DefaultHeadroom      = 0.2
	DefaultLeadTime      = 10 * time.Minute
	DefaultMaxAge        = 5 * time.Minute
	DefaultStabilization = 15 * time.Minute
	DefaultTimeZone      = "UTC"
	DefaultMode          = "floor"
)

// applyDefaults fills in the fields the file leaves out. A field the file
// sets, even to zero, is kept as written so that validation can judge it
// (headroom: 0 is a choice; interval: 0s is a mistake). For a schedule
// built in Go, zero values count as left out.
func (s *Schedule) applyDefaults() {
	unset := func(path string, zero bool) bool {
		if s.pos == nil {
			return zero
		}
		return !s.pos.has(path)
	}
	if unset("cloud.provider", s.Cloud.Provider == "") {
		s.Cloud.Provider = DefaultProvider
	}
	if unset("data_path", s.DataPath == "") {
		s.DataPath = DefaultDataPath
	}
	if unset("interval", s.Interval == 0) {
		s.Interval = Duration(DefaultInterval)
	}
	if unset("ssh.port", s.SSH.Port == 0) {
		s.SSH.Port = DefaultSSHPort
		if s.Cloud.Provider == "local" {
			s.SSH.Port = DefaultLocalSSHPort
		}
	}
	if unset("ssh.timeout", s.SSH.Timeout == 0) {
		s.SSH.Timeout = Duration(DefaultSSHTimeout)
	}
	if unset("ssh.deadline", s.SSH.Deadline == 0) {
		s.SSH.Deadline = Duration(DefaultSSHDeadline)
	}
	if unset("backups.keep", s.Backups.Keep == 0) {
		s.Backups.Keep = DefaultBackupKeep
	}
	for i := range s.Applications {
		a := &s.Applications[i]
		if unset(fmt.Sprintf("applications[%d].keep_releases", i), a.KeepReleases == 0) {
			a.KeepReleases = DefaultKeepReleases
		}
	}
	for i := range s.Roles {
		r := &s.Roles[i]
		rp := fmt.Sprintf("roles[%d].policies", i)
		for j := range r.Policies.Schedule {
			w := &r.Policies.Schedule[j]
			wp := fmt.Sprintf("%s.schedule[%d]", rp, j)
			if unset(wp+".name", w.Name == "") {
				w.Name = fmt.Sprintf("schedule[%d]", j)
			}
			if unset(wp+".timezone", w.TimeZone == "") {
				w.TimeZone = DefaultTimeZone
			}
			if unset(wp+".mode", w.Mode == "") {
				w.Mode = DefaultMode
			}
		}
		for j := range r.Policies.Windows {
			w := &r.Policies.Windows[j]
			wp := fmt.Sprintf("%s.windows[%d]", rp, j)
			if unset(wp+".name", w.Name == "") {
				w.Name = fmt.Sprintf("windows[%d]", j)
			}
			if unset(wp+".mode", w.Mode == "") {
				w.Mode = DefaultMode
			}
		}
		if l := r.Policies.Load; l != nil {
			if unset(rp+".load.headroom", l.Headroom == 0) {
				l.Headroom = DefaultHeadroom
			}
			if unset(rp+".load.lead_time", l.LeadTime == 0) {
				l.LeadTime = Duration(DefaultLeadTime)
			}
			if unset(rp+".load.max_age", l.MaxAge == 0) {
				l.MaxAge = Duration(DefaultMaxAge)
			}
			if unset(rp+".load.target_per_instance", l.TargetPerInstance == 0) {
				l.TargetPerInstance = r.Capacity
			}
			if l.Predict == nil {
				t := true
				l.Predict = &t
			}
		}
		if unset(rp+".scale_down.stabilization", r.Policies.ScaleDown.Stabilization == 0) {
			r.Policies.ScaleDown.Stabilization = Duration(DefaultStabilization)
		}
	}
}
