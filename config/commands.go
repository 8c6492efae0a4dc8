package config

import (
	"bytes"
	"regexp"
	"strings"
	"text/template"
)

// CommandVars are what an application's command templates are filled
// with (converge.Vars is this type, with the TIDE_* variables added).
type CommandVars struct {
	Label    string
	Role     string
	App      string
	Revision string
	// Processes is how many processes of the application run on the host.
	Processes int
	// Index is the process number, 1..Processes (start and stop only).
	Index int
	// DataPath is the host's data directory; AppDir is DataPath/apps/App.
	DataPath string
	AppDir   string
	// ReleaseDir is the directory of Revision's release.
	ReleaseDir string
	// Backup is the archive the backup command writes and the restore
	// command reads (backup and restore only).
	Backup string
	// Hosts maps each role to its hosts' addresses, by label number: the
	// web role learns where the database hosts are.
	Hosts map[string][]string
}

// CommandFuncs are the functions command templates may call: quote (the
// shell quoting of the caller, which runs the commands) and join
// (strings.Join).
func CommandFuncs(quote func(string) string) template.FuncMap {
	return template.FuncMap{"quote": quote, "join": strings.Join}
}

// ParseCommand parses one of an application's command templates; a
// field it names that CommandVars lacks is an error when it is executed.
func ParseCommand(name, text string, funcs template.FuncMap) (*template.Template, error) {
	return template.New(name).Funcs(funcs).Option("missingkey=error").Parse(text)
}

// ByName returns an application's command templates by name (setup,
// deploy, start, stop, health, backup, restore), those set only.
func (c Commands) ByName() map[string]string {
	out := map[string]string{}
	for name, text := range map[string]string{
		"setup": c.Setup, "deploy": c.Deploy, "start": c.Start, "stop": c.Stop,
		"health": c.Health, "backup": c.Backup, "restore": c.Restore,
	} {
		if text != "" {
			out[name] = text
		}
	}
	return out
}

// commands checks an application's command templates: each must parse
// and fill in for a host of each of the application's roles, so that a
// misspelt field ({{.Revison}}) is found here rather than on the hosts.
func (v *validator) commands(p string, a Application) {
	funcs := CommandFuncs(func(s string) string { return s })
	hosts := map[string][]string{}
	for _, r := range v.s.Roles {
		hosts[r.Name] = []string{"192.0.2.1"}
	}
	roles := v.s.RolesOf(a.Name)
	if len(roles) == 0 {
		roles = []string{""}
	}
	cmds := a.Commands.ByName()
	for _, name := range []string{"setup", "deploy", "start", "stop", "health", "backup", "restore"} {
		text, ok := cmds[name]
		if !ok {
			continue
		}
		cp := p + ".commands." + name
		t, err := ParseCommand(name, text, funcs)
		if err != nil {
			v.add(cp, "bad template: %v", templateErr(err))
			continue
		}
		for _, role := range roles {
			vars := CommandVars{
				Label: role + "-1", Role: role, App: a.Name, Revision: a.Revision, Processes: 1, Index: 1,
				DataPath: v.s.DataPath, AppDir: v.s.DataPath + "/apps/" + a.Name,
				ReleaseDir: v.s.DataPath + "/apps/" + a.Name + "/releases/" + a.Revision,
				Backup:     v.s.DataPath + "/apps/" + a.Name + "/backups/b", Hosts: hosts,
			}
			if err := t.Execute(&bytes.Buffer{}, vars); err != nil {
				v.add(cp, "%s", execProblem(err))
				break
			}
		}
	}
}

var unknownField = regexp.MustCompile(`can't evaluate field (\w+)`)

// execProblem says why a template does not fill in.
func execProblem(err error) string {
	if m := unknownField.FindStringSubmatch(err.Error()); m != nil {
		return "unknown field ." + m[1] + " in the template (fields: .Label .Role .App .Revision .Processes .Index .DataPath .AppDir .ReleaseDir .Backup .Hosts; functions: quote, join)"
	}
	return "template does not fill in: " + templateErr(err)
}

// templateErr rewrites text/template's "template: NAME:LINE[:COL]: msg"
// as "msg (template line LINE)": the problem's path already names the
// command.
func templateErr(err error) string {
	s := err.Error()
	rest, ok := strings.CutPrefix(s, "template: ")
	if !ok {
		return s
	}
	head, msg, ok := strings.Cut(rest, ": ")
	if !ok {
		return s
	}
	parts := strings.Split(head, ":")
	if len(parts) < 2 {
		return msg
	}
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "executing ") {
		msg = msg[i+2:]
	}
	return msg + " (template line " + parts[1] + ")"
}
