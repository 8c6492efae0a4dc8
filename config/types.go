package config

import "time"

// Schedule is one schedule file: a fleet, its applications, roles and policies.
type Schedule struct {
	// Name is the fleet's name; every instance tide launches is tagged with it.
	Name string `yaml:"name"`
	// Cloud says where hosts come from. The default is the embedded local cloud.
	Cloud Cloud `yaml:"cloud"`
	// SSH says how tide reaches hosts.
	SSH SSH `yaml:"ssh"`
	// DataPath is the data directory on hosts (/mnt on EC2); LABEL lives there.
	DataPath string `yaml:"data_path"`
	// Interval is how often the service decides. Default 1m.
	Interval Duration `yaml:"interval"`
	// Backups says where stateful roles' data goes before their hosts do.
	Backups Backups `yaml:"backups"`
	// Applications run on roles' hosts; several may share a role.
	Applications []Application `yaml:"applications"`
	// Roles are groups of identical hosts: database, web, heavy-task workers.
	Roles []Role `yaml:"roles"`

	// File is the path the schedule was read from (not in YAML).
	File string `yaml:"-"`

	// pos says where each field is in the file; nil for a schedule built in Go.
	pos *positions
}

// Cloud selects and configures the cloud provider.
type Cloud struct {
	// Provider is local (default), aws or static.
	Provider string `yaml:"provider"`
	// Region is the AWS region.
	Region string `yaml:"region"`
	// Image is the machine image to launch (an AMI id on AWS).
	Image string `yaml:"image"`
	// Endpoint overrides the cloud API endpoint (tests, demo mode).
	Endpoint string `yaml:"endpoint"`
	// KeyName, SubnetIDs and SecurityGroups are passed to RunInstances.
	KeyName        string            `yaml:"key_name"`
	Subnets        map[string]string `yaml:"subnets"` // zone -> subnet id
	SecurityGroups []string          `yaml:"security_groups"`
	// BootDelay is how long a local-cloud host takes to boot.
	BootDelay Duration `yaml:"boot_delay"`
	// Network is the local cloud's address range, e.g. 127.0.10.0/24.
	Network string `yaml:"network"`
}

// SSH says how tide reaches hosts.
type SSH struct {
	User         string   `yaml:"user"`
	Port         int      `yaml:"port"`
	IdentityFile string   `yaml:"identity_file"`
	KnownHosts   string   `yaml:"known_hosts"`
	Timeout      Duration `yaml:"timeout"`  // per dial
	Deadline     Duration `yaml:"deadline"` // for a new host to answer at all
}

// Backups says where the backups of stateful roles are kept, and how many.
type Backups struct {
	// Store is s3://bucket/prefix, or a directory on tide's machine
	// (relative to the schedule file's directory). Required when a
	// stateful role runs on aws; the local and static clouds default to
	// STATE_DIR/backups.
	Store string `yaml:"store"`
	// Keep is how many verified backups of each role's application are
	// kept: older ones are deleted once a new one is verified, never the
	// latest. 0 keeps every backup (for a store with lifecycle rules of
	// its own). Default 7.
	Keep int `yaml:"keep"`
}

// Application is one deployable application.
type Application struct {
	Name     string   `yaml:"name"`
	Revision string   `yaml:"revision"`
	Artifact Artifact `yaml:"artifact"`
	// Roles are the roles whose hosts run this application.
	Roles []string `yaml:"roles"`
	// Commands are shell templates run on the host.
	Commands Commands `yaml:"commands"`
	// Processes is the number of processes per host, by instance type;
	// the key "default" applies to types not listed.
	Processes map[string]int `yaml:"processes"`
	// KeepReleases is how many releases stay on a host. Default 3.
	KeepReleases int `yaml:"keep_releases"`
}

// Artifact is where an application's release comes from: a local file or
// directory uploaded over SSH, or an S3 object the host fetches.
type Artifact struct {
	Path string `yaml:"path"`
	S3   string `yaml:"s3"` // s3://bucket/key
}

// Commands are the shell templates an application is driven with.
type Commands struct {
	Setup   string `yaml:"setup"`
	Deploy  string `yaml:"deploy"`
	Start   string `yaml:"start"`
	Stop    string `yaml:"stop"`
	Health  string `yaml:"health"`
	Backup  string `yaml:"backup"`
	Restore string `yaml:"restore"`
}

// Role is a group of identical hosts.
type Role struct {
	Name         string   `yaml:"name"`
	InstanceType string   `yaml:"instance_type"`
	Min          int      `yaml:"min"`
	Max          int      `yaml:"max"`
	Zones        []string `yaml:"zones"`
	Stateful     bool     `yaml:"stateful"`
	// Capacity is how much load one instance serves, in the load metric's unit.
	Capacity float64 `yaml:"capacity"`
	// Applications run on this role's hosts (in addition to those that name the role).
	Applications []string `yaml:"applications"`
	// Hosts lists existing machines for the static provider.
	Hosts    []StaticHost `yaml:"hosts"`
	Policies Policies     `yaml:"policies"`
}

// StaticHost is an existing machine: tide deploys to it, never launches or terminates it.
type StaticHost struct {
	Label   string `yaml:"label"`
	Address string `yaml:"address"`
}

// Policies are the inputs that propose counts for a role.
type Policies struct {
	Schedule  []CronWindow   `yaml:"schedule"`
	Windows   []OneOffWindow `yaml:"windows"`
	Load      *LoadPolicy    `yaml:"load"`
	ScaleDown ScaleDown      `yaml:"scale_down"`
}

// CronWindow is a recurring window: from Start (a cron expression) until End
// (another cron expression) or for Duration.
type CronWindow struct {
	Name     string   `yaml:"name"`
	Start    string   `yaml:"start"`
	End      string   `yaml:"end"`
	Duration Duration `yaml:"duration"`
	// WallClock makes Duration a span of the local clock: Friday 18:00 for
	// 60h closes Monday 06:00 local even when the clocks change meanwhile.
	WallClock bool   `yaml:"wall_clock"`
	TimeZone  string `yaml:"timezone"`
	Count     int    `yaml:"count"`
	// Mode is floor (default: at least Count) or exact (Count, no more, no less).
	Mode string `yaml:"mode"`
}

// OneOffWindow is a dated window.
type OneOffWindow struct {
	Name  string    `yaml:"name"`
	From  time.Time `yaml:"from"`
	Until time.Time `yaml:"until"`
	Count int       `yaml:"count"`
	Mode  string    `yaml:"mode"`
}

// LoadPolicy scales a role on its load.
type LoadPolicy struct {
	Source LoadSource `yaml:"source"`
	// TargetPerInstance is the load one instance should carry; default the role's capacity.
	TargetPerInstance float64 `yaml:"target_per_instance"`
	// Headroom is the extra fraction kept above the load (0.2 = 20%).
	Headroom float64 `yaml:"headroom"`
	// LeadTime is how long a new host needs to become ready; the predictor
	// looks at least this far ahead.
	LeadTime Duration `yaml:"lead_time"`
	// MaxAge is how old the newest sample may be before the metric is stale.
	MaxAge Duration `yaml:"max_age"`
	// Predict turns the forecaster on (default true).
	Predict *bool `yaml:"predict"`
}

// LoadSource is where a role's load comes from: exactly one of these.
type LoadSource struct {
	Prometheus *PrometheusSource `yaml:"prometheus"`
	Push       bool              `yaml:"push"`
	Synthetic  *SyntheticSource  `yaml:"synthetic"`
	Trace      *TraceSource      `yaml:"trace"`
}

// PrometheusSource queries a Prometheus server.
type PrometheusSource struct {
	URL     string   `yaml:"url"`
	Query   string   `yaml:"query"`
	Timeout Duration `yaml:"timeout"`
}

// SyntheticSource is load that tide generates itself.
type SyntheticSource struct {
	Profile string  `yaml:"profile"`
	Peak    float64 `yaml:"peak"`
	Speed   float64 `yaml:"speed"`
	Seed    int64   `yaml:"seed"`
}

// TraceSource replays a CSV trace (timestamp,requests).
type TraceSource struct {
	File  string  `yaml:"file"`
	Speed float64 `yaml:"speed"`
}

// ScaleDown bounds how fast a role shrinks.
type ScaleDown struct {
	// Stabilization is how long a lower count must be wanted before it is applied.
	Stabilization Duration `yaml:"stabilization"`
	// MaxStep is the most hosts removed in one decision (0: no limit).
	MaxStep int `yaml:"max_step"`
}

// Duration is a time.Duration written as "90s", "15m", "2h".
type Duration time.Duration

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }
