package config

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

var (
	_ yaml.Unmarshaler = (*Duration)(nil)
	_ yaml.Marshaler   = Duration(0)
)

// UnmarshalYAML reads a duration written the way time.ParseDuration reads
// it ("90s", "15m", "1h30m"). A bare number is refused: its unit would be a
// guess.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration like 90s, 15m or 2h")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("bad duration %q: want a number with a unit, like 90s, 15m or 2h", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration the way UnmarshalYAML reads it.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// String formats the duration like time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }
