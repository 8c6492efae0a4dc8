package policies

import "time"

// Mode says how a proposal's count binds.
type Mode string

// The modes a window can have.
const (
	// Floor proposes at least Count hosts.
	Floor Mode = "floor"
	// Exact proposes exactly Count hosts: no more, no less.
	Exact Mode = "exact"
)

// Proposal is what one policy asks for at one instant, with a reason a
// person can read ("business-hours: 08:00-18:00 Europe/Brussels, floor 6").
type Proposal struct {
	Policy string    `json:"policy"`
	Count  int       `json:"count"`
	Mode   Mode      `json:"mode"`
	Reason string    `json:"reason"`
	Since  time.Time `json:"since"` // when the window opened
	Until  time.Time `json:"until"` // when the window closes
}
