package static

import (
	"errors"
	"testing"

	"github.com/tideops/tide/fleet"
)

func TestProvider(t *testing.T) {
	p, err := New("shop", []Host{{Label: "web-2", Address: "10.0.0.2"}, {Label: "web-1", Role: "web", Address: "10.0.0.1:2200"}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.List(t.Context(), "shop")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].ID != "static:web-1" || got[0].Address != "10.0.0.1:2200" || got[0].Role != "web" ||
		got[0].State != fleet.StateRunning || got[1].Tags[fleet.TagLabel] != "web-2" || got[1].Fleet != "shop" {
		t.Errorf("List = %+v", got)
	}
	got[0].Tags["x"] = "y"
	again, _ := p.List(t.Context(), "shop")
	if again[0].Tags["x"] != "" {
		t.Error("List hands out its own tag maps")
	}
	if other, _ := p.List(t.Context(), "other"); len(other) != 0 {
		t.Errorf("another fleet's list = %v", other)
	}
	if _, err := p.Launch(t.Context(), fleet.LaunchSpec{Label: "web-3"}); !errors.Is(err, ErrStatic) {
		t.Errorf("Launch err = %v", err)
	}
	if err := p.Terminate(t.Context(), "static:web-1"); !errors.Is(err, ErrStatic) {
		t.Errorf("Terminate err = %v", err)
	}
}

func TestNewRejects(t *testing.T) {
	for name, hosts := range map[string][]Host{
		"bad label":     {{Label: "web", Address: "a"}},
		"role mismatch": {{Label: "web-1", Role: "db", Address: "a"}},
		"no address":    {{Label: "web-1"}},
		"duplicate":     {{Label: "web-1", Address: "a"}, {Label: "web-1", Address: "b"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := New("f", hosts); err == nil {
				t.Error("accepted")
			}
		})
	}
}
