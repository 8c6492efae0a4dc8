package converge_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/tideops/tide/config"
	"github.com/tideops/tide/converge"
	"github.com/tideops/tide/deployer"
)

var deployerErrReplace = deployer.ErrReplaceHost

func TestTemplateErrors(t *testing.T) {
	base := func(cmd string) *config.Schedule {
		return &config.Schedule{Name: "conv", Applications: []config.Application{{
			Name: "web", Revision: "1", Roles: []string{"web"},
			Commands: config.Commands{Start: cmd},
		}}, Roles: []config.Role{{Name: "web"}}}
	}
	for _, tc := range []struct {
		name, start string
		atNew       bool
		want        string
	}{
		{"does not parse", "run {{.Label", true, "application web: command start:"},
		{"unknown field", "run {{.Nope}}", false, "application web: command start:"},
		{"unknown function", "run {{nope .Label}}", true, "application web: command start:"},
		{"missing role in Hosts", `run {{index .Hosts "db" 0}}`, false, "application web: command start:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := converge.New(converge.Options{Schedule: base(tc.start)})
			if tc.atNew {
				var te *converge.TemplateError
				if !errors.As(err, &te) || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("New: %v, want a TemplateError with %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tg := startLocal(t, "web-1", "")
			err = c.Converge(context.Background(), tg.h, tg.inst, "web")
			var te *converge.TemplateError
			if !errors.As(err, &te) || !strings.Contains(err.Error(), tc.want) || errors.Is(err, deployer.ErrReplaceHost) {
				t.Fatalf("Converge: %v, want a TemplateError with %q that does not replace the host", err, tc.want)
			}
		})
	}
}

func TestBadNames(t *testing.T) {
	for _, tc := range []struct{ app, rev string }{{"../x", "1"}, {"web", "../1"}, {"web", "a b"}, {"", "1"}} {
		s := &config.Schedule{Name: "conv", Applications: []config.Application{{Name: tc.app, Revision: tc.rev}}}
		if _, err := converge.New(converge.Options{Schedule: s}); err == nil {
			t.Errorf("New accepted application %q revision %q", tc.app, tc.rev)
		}
	}
}
