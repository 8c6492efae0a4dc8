// Package config reads and validates schedule files: the fleet, its
// applications, roles and policies. Every problem is reported with the
// file, line, column and field path it concerns.
//
// config may import policies (to compile windows) and fleet, nothing else
// from tide.
package config
