// Package trace reads and writes load traces: CSV files with the columns
// timestamp,requests, one row per fixed step, timestamps in RFC3339 UTC.
// Rows may have gaps (whole steps with no row); a gap is "no sample", never
// a zero. Every parse error names the file and line it concerns.
//
// trace is a leaf: it imports only the standard library.
package trace
