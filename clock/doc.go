// Package clock injects time. Components take a Clock in their constructor
// so that the service runs on the wall clock while tests, backtests and the
// simulator run the very same code on a virtual clock they advance by hand.
//
// clock depends on nothing but the standard library.
package clock
