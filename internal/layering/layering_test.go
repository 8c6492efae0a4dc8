package layering

import (
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/tideops/tide"

// forbidden lists, for a package prefix (relative to the module), the
// internal package prefixes it must not import, directly or not.
var forbidden = map[string][]string{
	"fleet":              {""}, // a leaf: nothing from tide at all
	"clock":              {""},
	"policies":           {"config", "scheduler", "predictor", "deployer", "cloud", "remote", "server", "state", "simulate", "loadsource"},
	"predictor":          {"config", "scheduler", "policies", "deployer", "cloud", "remote", "server", "state", "simulate", "loadsource"},
	"config":             {"scheduler", "predictor", "deployer", "cloud", "remote", "server", "state", "simulate"},
	"scheduler":          {"deployer", "cloud", "remote", "server", "simulate", "loadsource"},
	"deployer":           {"scheduler", "cloud", "remote", "server", "simulate", "predictor", "policies"},
	"cloud":              {"deployer", "scheduler", "config", "server", "predictor", "policies", "simulate"},
	"remote":             {"deployer", "scheduler", "config", "cloud", "server", "predictor", "policies"},
	"simulate":           {"deployer", "cloud", "remote", "server"},
	"converge":           {"scheduler", "cloud", "remote", "server", "state", "predictor", "simulate", "loadsource"},
	"objstore":           {"config", "scheduler", "deployer", "cloud", "remote", "server", "state", "converge"},
	"state":              {"deployer", "cloud", "remote", "server", "converge", "loadsource"},
	"server":             {"deployer", "cloud", "remote", "state", "converge", "loadsource"},
	"metrics":            {"cloud", "remote", "server", "state", "converge"},
	"loadsource":         {"deployer", "cloud", "remote", "server", "state", "converge"},
	"trace":              {""},
	"internal/cdp":       {""},
	"internal/sshdtest":  {""},
	"internal/localtest": {"deployer", "scheduler", "config", "server", "state", "converge", "predictor", "policies", "simulate", "loadsource"},
}

type pkg struct {
	ImportPath string
	Deps       []string
}

func TestDependenciesPointOneWay(t *testing.T) {
	cmd := exec.Command("go", "list", "-json", module+"/...")
	cmd.Dir = "../.."
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(out)
	seen := 0
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		seen++
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		for _, d := range p.Deps {
			if d == module+"/cmd/tide" || strings.HasPrefix(d, module+"/cmd/") {
				t.Errorf("%s imports %s: nothing may import cmd", p.ImportPath, d)
			}
			if !strings.HasPrefix(d, module+"/") {
				continue
			}
			drel := strings.TrimPrefix(d, module+"/")
			for prefix, bans := range forbidden {
				if rel != prefix && !strings.HasPrefix(rel, prefix+"/") {
					continue
				}
				for _, ban := range bans {
					if ban == "" || drel == ban || strings.HasPrefix(drel, ban+"/") {
						t.Errorf("%s depends on %s, which breaks the layering", p.ImportPath, d)
					}
				}
			}
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("go list: %v", err)
	}
	if seen < 5 {
		t.Fatalf("go list saw only %d packages", seen)
	}
}
