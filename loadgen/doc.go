// Package loadgen generates synthetic load that tide can scale on without a
// data file: office hours, a weekly batch, a monthly publication spike and a
// flash crowd, each with noise.
//
// A Generator's load is a pure function of the time and the seed (no
// state, no clock), so the simulator can sample a whole series and the
// service can replay the same load live at any speed.
//
// loadgen imports only trace (for Series) and the standard library.
package loadgen
