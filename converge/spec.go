package converge

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"text/template"

	"github.com/tideops/tide/config"
)

// Vars are what command templates are filled with: the schedule's
// command variables (config.CommandVars documents the fields).
type Vars config.CommandVars

// env returns the TIDE_* variables commands also see.
func (v Vars) env() []string {
	out := []string{
		"TIDE_LABEL=" + v.Label, "TIDE_ROLE=" + v.Role, "TIDE_APP=" + v.App,
		"TIDE_REVISION=" + v.Revision, "TIDE_PROCESSES=" + strconv.Itoa(v.Processes),
		"TIDE_DATA=" + v.DataPath, "TIDE_APP_DIR=" + v.AppDir, "TIDE_RELEASE=" + v.ReleaseDir,
	}
	if v.Index > 0 {
		out = append(out, "TIDE_INDEX="+strconv.Itoa(v.Index))
	}
	if v.Backup != "" {
		out = append(out, "TIDE_BACKUP="+v.Backup)
	}
	roles := make([]string, 0, len(v.Hosts))
	for r := range v.Hosts {
		roles = append(roles, r)
	}
	sort.Strings(roles)
	for _, r := range roles {
		out = append(out, "TIDE_HOSTS_"+envName(r)+"="+strings.Join(v.Hosts[r], " "))
	}
	return out
}

var nonEnv = regexp.MustCompile(`[^A-Z0-9_]`)

func envName(role string) string { return nonEnv.ReplaceAllString(strings.ToUpper(role), "_") }

// The commands of an application, by name.
const (
	cmdSetup   = "setup"
	cmdDeploy  = "deploy"
	cmdStart   = "start"
	cmdStop    = "stop"
	cmdHealth  = "health"
	cmdBackup  = "backup"
	cmdRestore = "restore"
)

// TemplateError says a command template of an application does not parse
// or does not execute. Retrying cannot fix it.
type TemplateError struct {
	App, Command string
	Err          error
}

func (e *TemplateError) Error() string {
	return fmt.Sprintf("application %s: command %s: %v", e.App, e.Command, e.Err)
}

func (e *TemplateError) Unwrap() error { return e.Err }

var funcs = config.CommandFuncs(shellQuote)

// app is an application as the converger runs it: its commands parsed.
type app struct {
	config.Application
	tmpl map[string]*template.Template
	// byRevision says the artifact names {{.Revision}} (or there is
	// none): any revision's release can be made from it.
	byRevision bool
	// built is the revision an artifact that does not name its revision
	// holds ("": the schedule file's): the only one whose release may be
	// made from it (see WithArtifactRevision).
	built string
}

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+-]*$`)

// checkName rejects names that cannot be a directory on the host.
func checkName(what, s string) error {
	if !namePattern.MatchString(s) || s == "." || s == ".." {
		return fmt.Errorf("%s %q: want letters, digits and . _ + - only", what, s)
	}
	return nil
}

func parseApp(a config.Application) (*app, error) {
	if err := checkName("application name", a.Name); err != nil {
		return nil, err
	}
	out := &app{Application: a, tmpl: map[string]*template.Template{}}
	for name, text := range a.Commands.ByName() {
		t, err := config.ParseCommand(a.Name+"."+name, text, funcs)
		if err != nil {
			return nil, &TemplateError{App: a.Name, Command: name, Err: err}
		}
		out.tmpl[name] = t
	}
	if _, err := a.Artifact.Render(config.ArtifactVars{App: a.Name, Revision: "1"}); err != nil {
		return nil, &TemplateError{App: a.Name, Command: "artifact", Err: err}
	}
	out.byRevision = a.Artifact.NamesRevision()
	return out, nil
}

// render fills command name with v; "" when the application has none.
func (a *app) render(name string, v Vars) (string, error) {
	t := a.tmpl[name]
	if t == nil {
		return "", nil
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return "", &TemplateError{App: a.Name, Command: name, Err: err}
	}
	return b.String(), nil
}

// processesFor is the number of processes on a host of the given
// instance type: its entry in processes, else "default", else 1.
func (a *app) processesFor(instanceType string) int {
	if n, ok := a.Processes[instanceType]; ok && instanceType != "" {
		return n
	}
	if n, ok := a.Processes["default"]; ok {
		return n
	}
	return 1
}

func hash(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// isPermanent says retrying cannot fix err.
func isPermanent(err error) bool {
	var te *TemplateError
	return errors.As(err, &te) || errors.Is(err, errConfig)
}

// errConfig marks errors in the schedule that no retry fixes.
var errConfig = errors.New("configuration")

// shellQuote quotes s for /bin/sh.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
