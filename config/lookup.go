package config

import (
	"path/filepath"
	"slices"
	"strings"
)

// Role returns the role with the given name.
func (s *Schedule) Role(name string) (Role, bool) {
	for _, r := range s.Roles {
		if r.Name == name {
			return r, true
		}
	}
	return Role{}, false
}

// Application returns the application with the given name.
func (s *Schedule) Application(name string) (Application, bool) {
	for _, a := range s.Applications {
		if a.Name == name {
			return a, true
		}
	}
	return Application{}, false
}

// AppsOf returns the applications that run on a role's hosts: those that
// name the role and those the role names, in the file's order of
// applications.
func (s *Schedule) AppsOf(role string) []Application {
	r, _ := s.Role(role)
	var out []Application
	for _, a := range s.Applications {
		if slices.Contains(a.Roles, role) || slices.Contains(r.Applications, a.Name) {
			out = append(out, a)
		}
	}
	return out
}

// RolesOf returns the names of the roles whose hosts run an application,
// in the file's order of roles.
func (s *Schedule) RolesOf(app string) []string {
	a, _ := s.Application(app)
	var out []string
	for _, r := range s.Roles {
		if slices.Contains(a.Roles, r.Name) || slices.Contains(r.Applications, app) {
			out = append(out, r.Name)
		}
	}
	return out
}

// ProcessesFor returns how many processes of app run on one of the role's
// hosts: the count for the role's instance type, else the "default" count,
// else 1.
func (r Role) ProcessesFor(app Application) int {
	if n, ok := app.Processes[r.InstanceType]; ok && r.InstanceType != "" {
		return n
	}
	if n, ok := app.Processes["default"]; ok {
		return n
	}
	return 1
}

// BackupStore returns backups.store with a directory made relative to the
// schedule file's directory (as given when the file sets none: "" or an
// s3:// URL).
func (s *Schedule) BackupStore() string {
	st := s.Backups.Store
	if st == "" || strings.HasPrefix(st, "s3://") || filepath.IsAbs(st) || s.File == "" {
		return st
	}
	return filepath.Join(filepath.Dir(s.File), st)
}
