// Package layering holds no code, only a test that keeps tide's
// dependencies pointing one way: cmd/tide wires everything; policies and
// predictor are pure; scheduler decides; deployer acts through interfaces it
// declares; cloud providers know only fleet; nothing imports cmd.
package layering
