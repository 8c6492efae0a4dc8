// Package predictor forecasts a role's load from its history, so that tide
// can ask for hosts before the load arrives: at least the time a new host
// needs to become ready.
//
// predictor is pure Go: no network, no cgo, no clouds; time comes in as
// parameters.
package predictor
