package config

import (
	"errors"
	"strings"
	"testing"
)

// want is one expected problem: its path and position, and a part of its
// message.
type want struct {
	path      string
	line, col int
	msg       string
}

// checkProblems parses doc and asserts it yields exactly the wanted problems.
func checkProblems(t *testing.T, doc string, wants []want) {
	t.Helper()
	_, err := Parse("t.yaml", []byte(doc), WithNow(refNow))
	if len(wants) == 0 {
		if err != nil {
			t.Fatalf("want no problems, got:\n%v", err)
		}
		return
	}
	var ps Problems
	if !errors.As(err, &ps) {
		t.Fatalf("want Problems, got %T %v", err, err)
	}
	if len(ps) != len(wants) {
		t.Fatalf("want %d problems, got %d:\n%v", len(wants), len(ps), ps)
	}
	for i, w := range wants {
		p := ps[i]
		if p.File != "t.yaml" || p.Path != w.path || p.Line != w.line || p.Col != w.col || !strings.Contains(p.Msg, w.msg) {
			t.Errorf("problem %d:\n got  %s\n want t.yaml:%d:%d: %s: ...%s...", i, p, w.line, w.col, w.path, w.msg)
		}
	}
}

// base is the smallest valid schedule; cases append to it or replace it.
const base = `name: t
roles:
  - name: web
    max: 3
`

func TestValidSchedules(t *testing.T) {
	checkProblems(t, base, nil)
}

func TestDecodeProblems(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []want
	}{
		{"unknown top-level field", "name: t\ncolour: red\nroles:\n  - name: web\n    max: 3\n",
			[]want{{"colour", 2, 1, `unknown field "colour"`}}},
		{"unknown nested field with a suggestion", base + "    instance_typ: t3.micro\n",
			[]want{{"roles[0].instance_typ", 5, 5, `unknown field "instance_typ"; did you mean "instance_type"?`}}},
		{"unknown field deep in policies", base + "    policies:\n      schedule:\n        - start: \"0 8 * * *\"\n          duration: 1h\n          counts: 2\n",
			[]want{{"roles[0].policies.schedule[0].counts", 9, 11, `unknown field "counts"`}}},
		{"every unknown field is reported", "name: t\nfoo: 1\nroles:\n  - name: web\n    max: 3\n    bar: 2\n",
			[]want{{"foo", 2, 1, "unknown field"}, {"roles[0].bar", 6, 5, "unknown field"}}},
		{"unknown fields do not hide other problems", "name: t\nroles:\n  - name: web\n    mn: 4\n    min: 5\n    max: 3\n",
			[]want{{"roles[0].mn", 4, 5, `unknown field "mn"; did you mean "min"?`}, {"roles[0].min", 5, 10, "min 5 is above max 3"}}},
		{"wrong type", "name: t\nroles:\n  - name: web\n    max: lots\n",
			[]want{{"roles[0].max", 4, 10, `want a whole number, got "lots"`}}},
		{"mapping where a list goes", "name: t\nroles:\n  name: web\n",
			[]want{{"roles", 3, 3, "want a list, got a mapping"}}},
		{"bad duration", base + "interval: 5\n",
			[]want{{"interval", 5, 11, `bad duration "5"`}}},
		{"bad timestamp", base + "    policies:\n      windows:\n        - from: tomorrow\n          until: 2026-01-02T00:00:00Z\n",
			[]want{{"roles[0].policies.windows[0].from", 7, 17, "want a timestamp"}}},
		{"key set twice", "name: t\nroles:\n  - name: web\n    max: 3\n    max: 4\n",
			[]want{{"roles[0].max", 5, 5, "set twice (first on line 4)"}}},
		{"bad YAML", "name: t\nroles:\n  - name: web\n    max: 3\n  oops\n",
			[]want{{"", 5, 0, "bad YAML: could not find expected ':'"}}},
		{"two documents", base + "---\nname: u\n",
			[]want{{"", 5, 1, "one YAML document"}}},
		{"empty file", "",
			[]want{{"name", 0, 0, "required"}, {"roles", 0, 0, "at least one role"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.doc, tt.want) })
	}
}

func TestScheduleChecks(t *testing.T) {
	// win builds a role "web" (max 6) with the given policies block.
	win := func(policies string) string {
		return "name: t\nroles:\n  - name: web\n    max: 6\n    policies:\n" + policies
	}
	tests := []struct {
		name string
		doc  string
		want []want
	}{
		{"bad fleet name", "name: My Fleet\nroles:\n  - name: web\n    max: 3\n",
			[]want{{"name", 1, 7, `bad name "My Fleet"`}}},
		{"relative data path", base + "data_path: data\n",
			[]want{{"data_path", 5, 12, "absolute path"}}},
		{"zero interval", base + "interval: 0s\n",
			[]want{{"interval", 5, 11, "positive duration"}}},
		{"zero ssh port", base + "ssh:\n  port: 0\n",
			[]want{{"ssh.port", 6, 9, "between 1 and 65535"}}},
		{"unknown provider", base + "cloud:\n  provider: gcp\n",
			[]want{{"cloud.provider", 6, 13, `unknown provider "gcp": want one of local, aws, static`}}},
		{"aws needs region, image and instance types", base + "cloud:\n  provider: aws\n",
			[]want{
				{"roles[0].instance_type", 3, 5, "required for the aws provider"},
				{"cloud.image", 6, 3, "required for the aws provider"},
				{"cloud.region", 6, 3, "required for the aws provider"},
			}},
		{"local network outside loopback", base + "cloud:\n  network: 10.0.0.0/8\n",
			[]want{{"cloud.network", 6, 12, "inside 127.0.0.0/8"}}},
		{"no roles", "name: t\n",
			[]want{{"roles", 1, 1, "at least one role"}}},
		{"min above max", "name: t\nroles:\n  - name: web\n    min: 4\n    max: 3\n",
			[]want{{"roles[0].min", 4, 10, "min 4 is above max 3"}}},
		{"negative min", "name: t\nroles:\n  - name: web\n    min: -1\n    max: 3\n",
			[]want{{"roles[0].min", 4, 10, "must not be negative, got -1"}}},
		{"negative max", "name: t\nroles:\n  - name: web\n    max: -3\n",
			[]want{{"roles[0].max", 4, 10, "must not be negative, got -3"}}},
		{"max left out", "name: t\nroles:\n  - name: web\n",
			[]want{{"roles[0].max", 3, 5, "required: at least 1"}}},
		{"max zero", "name: t\nroles:\n  - name: web\n    max: 0\n",
			[]want{{"roles[0].max", 4, 10, "required: at least 1"}}},
		{"negative capacity", base + "    capacity: -5\n",
			[]want{{"roles[0].capacity", 5, 15, "must not be negative"}}},
		{"duplicate role", base + "  - name: web\n    max: 2\n",
			[]want{{"roles[1].name", 5, 11, `duplicate role name "web" (also roles[0])`}}},
		{"bad role name", "name: t\nroles:\n  - name: Web_1\n    max: 3\n",
			[]want{{"roles[0].name", 3, 11, `bad name "Web_1"`}}},
		{"bad cron", win("      schedule:\n        - start: \"0 25 * * *\"\n          duration: 1h\n"),
			[]want{{"roles[0].policies.schedule[0].start", 7, 18, `bad cron "0 25 * * *": hour out of range`}}},
		{"cron with four fields", win("      schedule:\n        - start: \"0 8 * *\"\n          duration: 1h\n"),
			[]want{{"roles[0].policies.schedule[0].start", 7, 18, "want 5 fields"}}},
		{"cron with a bad weekday name", win("      schedule:\n        - start: \"0 8 * * MON-FRY\"\n          duration: 1h\n"),
			[]want{{"roles[0].policies.schedule[0].start", 7, 18, `bad cron "0 8 * * MON-FRY": day of week:`}}},
		{"cron with @every", win("      schedule:\n        - start: \"@every 1h\"\n          duration: 1h\n"),
			[]want{{"roles[0].policies.schedule[0].start", 7, 18, "@every"}}},
		{"cron with a time zone prefix", win("      schedule:\n        - start: \"TZ=UTC 0 8 * * *\"\n          duration: 1h\n"),
			[]want{{"roles[0].policies.schedule[0].start", 7, 18, "timezone field"}}},
		{"window opening every minute", win("      schedule:\n        - start: \"* 8 * * *\"\n          duration: 1h\n"),
			[]want{{"roles[0].policies.schedule[0].start", 7, 18, "at most once an hour"}}},
		{"window opening twice an hour", win("      schedule:\n        - start: \"0,30 8 * * *\"\n          duration: 10m\n"),
			[]want{{"roles[0].policies.schedule[0].start", 7, 18, "at most once an hour"}}},
		{"hourly window is fine", win("      schedule:\n        - start: \"@hourly\"\n          duration: 10m\n"), nil},
		{"descriptor is fine", win("      schedule:\n        - start: \"@daily\"\n          duration: 1h\n"), nil},
		{"bad end cron", win("      schedule:\n        - start: \"0 8 * * *\"\n          end: \"61 8 * * *\"\n"),
			[]want{{"roles[0].policies.schedule[0].end", 8, 16, "minute out of range"}}},
		{"start left out", win("      schedule:\n        - duration: 1h\n"),
			[]want{{"roles[0].policies.schedule[0].start", 7, 11, "required"}}},
		{"unknown time zone", win("      schedule:\n        - start: \"0 8 * * *\"\n          duration: 1h\n          timezone: Europe/Bruxelles\n"),
			[]want{{"roles[0].policies.schedule[0].timezone", 9, 21, `unknown time zone "Europe/Bruxelles"`}}},
		{"Local time zone", win("      schedule:\n        - start: \"0 8 * * *\"\n          duration: 1h\n          timezone: Local\n"),
			[]want{{"roles[0].policies.schedule[0].timezone", 9, 21, `unknown time zone "Local"`}}},
		{"neither end nor duration", win("      schedule:\n        - start: \"0 8 * * *\"\n"),
			[]want{{"roles[0].policies.schedule[0]", 7, 11, "needs an end (cron) or a duration"}}},
		{"both end and duration", win("      schedule:\n        - start: \"0 8 * * *\"\n          end: \"0 9 * * *\"\n          duration: 1h\n"),
			[]want{{"roles[0].policies.schedule[0].duration", 9, 21, "not both"}}},
		{"negative duration", win("      schedule:\n        - start: \"0 8 * * *\"\n          duration: -1h\n"),
			[]want{{"roles[0].policies.schedule[0].duration", 8, 21, "positive duration"}}},
		{"wall clock with an end", win("      schedule:\n        - start: \"0 8 * * *\"\n          end: \"0 9 * * *\"\n          wall_clock: true\n"),
			[]want{{"roles[0].policies.schedule[0].wall_clock", 9, 23, "not to an end"}}},
		{"window that never ends", win("      schedule:\n        - start: \"0 8 * * *\"\n          end: \"0 0 30 2 *\"\n"),
			[]want{{"roles[0].policies.schedule[0].end", 8, 16, `a window that never ends: end cron "0 0 30 2 *" never fires`}}},
		{"window that never opens", win("      schedule:\n        - start: \"0 0 31 4 *\"\n          duration: 1h\n"),
			[]want{{"roles[0].policies.schedule[0].start", 7, 18, "never opens"}}},
		{"end that fires too rarely (policies)", win("      schedule:\n        - start: \"0 8 * * *\"\n          end: \"0 0 29 2 *\"\n"),
			[]want{{"roles[0].policies.schedule[0].end", 8, 16, "never ends"}}},
		{"bad mode", win("      schedule:\n        - start: \"0 8 * * *\"\n          duration: 1h\n          mode: atleast\n"),
			[]want{{"roles[0].policies.schedule[0].mode", 9, 17, `bad mode "atleast"`}}},
		{"negative count", win("      schedule:\n        - start: \"0 8 * * *\"\n          duration: 1h\n          count: -2\n"),
			[]want{{"roles[0].policies.schedule[0].count", 9, 18, "must not be negative, got -2"}}},
		{"count above max", win("      schedule:\n        - start: \"0 8 * * *\"\n          duration: 1h\n          count: 7\n"),
			[]want{{"roles[0].policies.schedule[0].count", 9, 18, "above the role's max 6"}}},
		{"exact count below min", "name: t\nroles:\n  - name: web\n    min: 2\n    max: 6\n    policies:\n      windows:\n        - from: 2026-04-01T00:00:00Z\n          until: 2026-04-02T00:00:00Z\n          count: 1\n          mode: exact\n",
			[]want{{"roles[0].policies.windows[0].count", 10, 18, "below the role's min 2"}}},
		{"duplicate window names", win("      schedule:\n        - name: day\n          start: \"0 8 * * *\"\n          duration: 1h\n      windows:\n        - name: day\n          from: 2026-04-01T00:00:00Z\n          until: 2026-04-02T00:00:00Z\n"),
			[]want{{"roles[0].policies.windows[0].name", 11, 17, `duplicate window name "day" (also roles[0].policies.schedule[0])`}}},
		{"conflicting exact windows", win("      schedule:\n        - name: day\n          start: \"0 8 * * 1-5\"\n          end: \"0 18 * * 1-5\"\n          count: 4\n          mode: exact\n        - name: lunch\n          start: \"0 12 * * *\"\n          duration: 1h\n          count: 5\n          mode: exact\n"),
			[]want{{"roles[0].policies.schedule[1]", 12, 11, `exact window "lunch" (count 5) overlaps exact window "day" (count 4), first at 2026-03-02T12:00:00Z`}}},
		{"exact windows that agree do not conflict", win("      schedule:\n        - name: day\n          start: \"0 8 * * *\"\n          end: \"0 18 * * *\"\n          count: 4\n          mode: exact\n        - name: lunch\n          start: \"0 12 * * *\"\n          duration: 1h\n          count: 4\n          mode: exact\n"), nil},
		{"floor windows may overlap", win("      schedule:\n        - name: day\n          start: \"0 8 * * *\"\n          end: \"0 18 * * *\"\n          count: 4\n        - name: lunch\n          start: \"0 12 * * *\"\n          duration: 1h\n          count: 5\n"), nil},
		{"one-off until before from", win("      windows:\n        - from: 2026-04-02T00:00:00Z\n          until: 2026-04-01T00:00:00Z\n"),
			[]want{{"roles[0].policies.windows[0].until", 8, 18, "is not after from"}}},
		{"one-off until equal to from", win("      windows:\n        - from: 2026-04-02T00:00:00Z\n          until: 2026-04-02T01:00:00+01:00\n"),
			[]want{{"roles[0].policies.windows[0].until", 8, 18, "is not after from"}}},
		{"one-off without from", win("      windows:\n        - until: 2026-04-01T00:00:00Z\n"),
			[]want{{"roles[0].policies.windows[0].from", 7, 11, "required"}}},
		{"load without source", win("      load:\n        headroom: 0.1\n"),
			[]want{
				{"roles[0].policies.load.source", 7, 9, "required: one of prometheus, push, synthetic or trace"},
				{"roles[0].policies.load.target_per_instance", 7, 9, "required"},
			}},
		{"load with two sources", win("      load:\n        target_per_instance: 10\n        source:\n          push: true\n          synthetic:\n            profile: office\n"),
			[]want{{"roles[0].policies.load.source", 9, 11, "choose one source; found push and synthetic"}}},
		{"negative headroom", win("      load:\n        target_per_instance: 10\n        headroom: -0.1\n        source:\n          push: true\n"),
			[]want{{"roles[0].policies.load.headroom", 8, 19, "must not be negative"}}},
		{"unknown synthetic profile", win("      load:\n        target_per_instance: 10\n        source:\n          synthetic:\n            profile: weekly\n"),
			[]want{{"roles[0].policies.load.source.synthetic.profile", 10, 22, `unknown profile "weekly"`}}},
		{"prometheus without query", win("      load:\n        target_per_instance: 10\n        source:\n          prometheus:\n            url: http://127.0.0.1:9090\n"),
			[]want{{"roles[0].policies.load.source.prometheus.query", 10, 13, "required"}}},
		{"trace without file", win("      load:\n        target_per_instance: 10\n        source:\n          trace: {speed: 60}\n"),
			[]want{{"roles[0].policies.load.source.trace.file", 9, 18, "required"}}},
		{"negative scale-down step", win("      scale_down:\n        max_step: -1\n"),
			[]want{{"roles[0].policies.scale_down.max_step", 7, 19, "must not be negative"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.doc, tt.want) })
	}
}

func TestApplicationChecks(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []want
	}{
		{"unknown role in app.roles", base + "applications:\n  - name: dms\n    roles: [web, wbe]\n",
			[]want{{"applications[0].roles[1]", 7, 18, `unknown role "wbe"`}}},
		{"unknown application in role.applications", "name: t\nroles:\n  - name: web\n    max: 3\n    applications: [dms, reprts]\napplications:\n  - name: dms\n",
			[]want{{"roles[0].applications[1]", 5, 25, `unknown application "reprts"`}}},
		{"piggybacking application", "name: t\nroles:\n  - name: web\n    max: 3\n    applications: [reports]\napplications:\n  - name: reports\n", nil},
		{"application on no role", base + "applications:\n  - name: dms\n",
			[]want{{"applications[0].roles", 6, 5, "runs on no role"}}},
		{"duplicate application", base + "applications:\n  - name: dms\n    roles: [web]\n  - name: dms\n    roles: [web]\n",
			[]want{{"applications[1].name", 8, 11, `duplicate application name "dms"`}}},
		{"artifact with path and s3", base + "applications:\n  - name: dms\n    roles: [web]\n    artifact:\n      path: build/dms.tgz\n      s3: s3://b/dms.tgz\n",
			[]want{{"applications[0].artifact.s3", 10, 11, "not both"}}},
		{"bad s3 url", base + "applications:\n  - name: dms\n    roles: [web]\n    artifact:\n      s3: https://b/dms.tgz\n",
			[]want{{"applications[0].artifact.s3", 9, 11, "want s3://bucket/key"}}},
		{"templated artifacts", base + "applications:\n  - name: dms\n    roles: [web]\n    revision: \"2.1\"\n    artifact:\n      path: build/{{.App}}-{{.Revision}}.tgz\n" +
			"  - name: pdf\n    roles: [web]\n    artifact: {s3: \"s3://{{.App}}-artifacts/{{.Revision}}.tgz\"}\n", nil},
		{"artifact template that does not parse", base + "applications:\n  - name: dms\n    roles: [web]\n    artifact:\n      path: build/{{.Revision}.tgz\n",
			[]want{{"applications[0].artifact.path", 9, 13, "bad template: template: path:1: bad character"}}},
		{"artifact template naming a host", base + "applications:\n  - name: dms\n    roles: [web]\n    artifact:\n      s3: s3://b/{{.Label}}.tgz\n",
			[]want{{"applications[0].artifact.s3", 9, 11, "{{.App}} and {{.Revision}} only"}}},
		{"artifact template rendering empty", base + "applications:\n  - name: dms\n    roles: [web]\n    artifact:\n      path: \"{{if false}}x{{end}}\"\n",
			[]want{{"applications[0].artifact.path", 9, 13, `renders empty for revision "1"`}}},
		{"s3 template rendering no bucket", base + "applications:\n  - name: dms\n    roles: [web]\n    revision: r7\n    artifact:\n      s3: \"s3://{{.Revision}}\"\n",
			[]want{{"applications[0].artifact.s3", 10, 11, `want s3://bucket/key, got "s3://{{.Revision}}" ("s3://r7" for revision r7)`}}},
		{"negative processes", base + "applications:\n  - name: dms\n    roles: [web]\n    processes:\n      t3.medium: -4\n      default: 2\n",
			[]want{{`applications[0].processes["t3.medium"]`, 9, 18, "want 0 or more processes, got -4"}}},
		{"zero keep_releases", base + "applications:\n  - name: dms\n    roles: [web]\n    keep_releases: 0\n",
			[]want{{"applications[0].keep_releases", 8, 20, "want 1 or more"}}},
		{"command templates", base + "applications:\n  - name: dms\n    roles: [web]\n    commands:\n      start: serve --db {{join (index .Hosts \"web\") \",\"}} --n {{.Processes}} {{quote .DataPath}}\n", nil},
		{"command template naming an unknown field", base + "applications:\n  - name: dms\n    roles: [web]\n    commands:\n      deploy: echo {{.Revison}} > REVISION\n",
			[]want{{"applications[0].commands.deploy", 9, 15, "unknown field .Revison in the template (fields: .Label"}}},
		{"command template that does not parse", base + "applications:\n  - name: dms\n    roles: [web]\n    commands:\n      health: |\n        test -f ok\n        test {{.Revision} = 1\n",
			[]want{{"applications[0].commands.health", 9, 15, "bad template: bad character U+007D '}' (template line 2)"}}},
		{"command template calling an unknown function", base + "applications:\n  - name: dms\n    roles: [web]\n    commands:\n      start: run {{shellquote .Label}}\n",
			[]want{{"applications[0].commands.start", 9, 14, `bad template: function "shellquote" not defined (template line 1)`}}},
		{"stateful role without backup and restore", "name: t\nroles:\n  - name: db\n    max: 1\n    stateful: true\napplications:\n  - name: pg\n    roles: [db]\n    commands:\n      start: pg_ctl start\n",
			[]want{
				{"applications[0].commands.backup", 10, 7, `application "pg" runs on stateful role "db"`},
				{"applications[0].commands.restore", 10, 7, `application "pg" runs on stateful role "db"`},
			}},
		{"stateful role through role.applications", "name: t\nroles:\n  - name: db\n    max: 1\n    stateful: true\n    applications: [pg]\napplications:\n  - name: pg\n    commands:\n      backup: tar czf b.tgz data\n",
			[]want{{"applications[0].commands.restore", 10, 7, "stateful role"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.doc, tt.want) })
	}
}

func TestStaticChecks(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []want
	}{
		{"static hosts", "name: t\ncloud: {provider: static}\nroles:\n  - name: web\n    max: 2\n    hosts:\n      - {label: web-1, address: 10.0.0.1}\n      - {label: web-2, address: 10.0.0.2}\n", nil},
		{"static role without hosts", "name: t\ncloud: {provider: static}\nroles:\n  - name: web\n    max: 2\n",
			[]want{{"roles[0].hosts", 4, 5, "required: the static provider"}}},
		{"duplicate static labels", "name: t\ncloud: {provider: static}\nroles:\n  - name: web\n    max: 2\n    hosts:\n      - {label: web-1, address: 10.0.0.1}\n      - {label: web-1, address: 10.0.0.2}\n",
			[]want{{"roles[0].hosts[1].label", 8, 17, `duplicate label "web-1" (also roles[0].hosts[0])`}}},
		{"static label of another role", "name: t\ncloud: {provider: static}\nroles:\n  - name: web\n    max: 1\n    hosts:\n      - {label: db-1, address: 10.0.0.1}\n",
			[]want{{"roles[0].hosts[0].label", 7, 17, `bad label "db-1": want web-N`}}},
		{"static max above hosts", "name: t\ncloud: {provider: static}\nroles:\n  - name: web\n    max: 3\n    hosts:\n      - {label: web-1, address: 10.0.0.1}\n",
			[]want{{"roles[0].max", 5, 10, "above the 1 static hosts"}}},
		{"hosts on a launching provider", base + "    hosts:\n      - {label: web-1, address: 10.0.0.1}\n",
			[]want{{"roles[0].hosts", 6, 7, "hosts are for the static provider"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkProblems(t, tt.doc, tt.want) })
	}
}

func TestProblemsError(t *testing.T) {
	ps := Problems{
		{File: "x.yaml", Line: 12, Col: 14, Path: "roles[1].policies.schedule[0].start", Msg: `bad cron "0 25 * * *": hour out of range`},
		{File: "x.yaml", Path: "roles", Msg: "required: at least one role"},
		{File: "x.yaml", Line: 3, Msg: "bad YAML: did not find expected key"},
	}
	want := `x.yaml:12:14: roles[1].policies.schedule[0].start: bad cron "0 25 * * *": hour out of range
x.yaml: roles: required: at least one role
x.yaml:3: bad YAML: did not find expected key`
	if got := ps.Error(); got != want {
		t.Errorf("Error() =\n%s\nwant\n%s", got, want)
	}
}
