package converge

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/tideops/tide/deployer"
)

// HostState is what a host holds, as read from the host itself.
type HostState struct {
	// Label is what the host's LABEL file says.
	Label string `json:"label,omitempty"`
	// Ready is set once the host has converged fully.
	Ready bool `json:"ready"`
	// Apps are the applications found on the host, by name.
	Apps []AppState `json:"apps"`
}

// App returns the state of the named application.
func (s HostState) App(name string) (AppState, bool) {
	for _, a := range s.Apps {
		if a.Name == name {
			return a, true
		}
	}
	return AppState{}, false
}

// AppState is one application on a host.
type AppState struct {
	Name string `json:"name"`
	// Revision is the release current points to ("" when none).
	Revision string `json:"revision"`
	// Running counts the processes alive.
	Running int `json:"running"`
	// Releases are the complete releases on the host, oldest deployed first.
	Releases []string `json:"releases"`
	// History lists the revisions current pointed to, oldest first.
	History []string `json:"history,omitempty"`

	setup    string          // hash of the setup that ran
	restored bool            // a stateful app's data was restored (or found none to restore)
	complete map[string]bool // release -> complete
	procs    map[int]proc
}

type proc struct {
	pid   int
	alive bool
	spec  string
}

// Previous returns the release current pointed to before the present one
// that is still complete on the host.
func (a AppState) Previous() (string, bool) {
	for i := len(a.History) - 1; i >= 0; i-- {
		if r := a.History[i]; r != a.Revision && a.complete[r] {
			return r, true
		}
	}
	return "", false
}

// aliveFn is a shell function: is pid alive (a zombie is not)? It uses
// builtins only: hosts run it for every process on every converge.
const aliveFn = `alive() { kill -0 "$1" 2>/dev/null || return 1; s=; read -r s < /proc/"$1"/stat 2>/dev/null || return 0; case "${s##*) }" in Z*) return 1;; esac; return 0; }`

// probeScript prints the state of every application below the data path.
// It forks nothing in the common case (read, not cat; cd -P, not
// readlink) as it runs on every converge, twice.
const probeScript = aliveFn + `
[ -d "$D" ] || exit 0
case $D in /*) ;; *) D=$PWD/$D ;; esac
if [ -f "$D/LABEL" ]; then read -r l < "$D/LABEL"; echo "label $l"; fi
[ -f "$D/.tide/ready" ] && echo "ready"
for a in "$D"/apps/*/; do
  [ -d "$a" ] || continue
  a=${a%/}
  echo "app ${a##*/}"
  if [ -f "$a/.tide-setup" ]; then read -r x < "$a/.tide-setup"; echo "setup $x"; fi
  [ -f "$a/.tide-restored" ] && echo "restored"
  if [ -L "$a/current" ]; then
    # cd -P resolves the link without forking readlink; a dangling link
    # is still reported.
    if cd -P "$a/current" 2>/dev/null; then echo "current ${PWD##*/}"; else echo "current $(readlink "$a/current")"; fi
  fi
  for r in "$a"/releases/*/; do
    [ -d "$r" ] || continue
    r=${r%/}; c=0; [ -f "$r/.tide-release" ] && c=1
    echo "release ${r##*/} $c"
  done
  [ -f "$a/history" ] && while read -r h; do echo "history $h"; done < "$a/history"
  for p in "$a"/run/*.pid; do
    [ -f "$p" ] || continue
    i=${p##*/}; i=${i%.pid}; pid=; read -r pid < "$p"; l=0
    alive "$pid" && l=1
    x=; [ -f "$a/run/$i.spec" ] && read -r x < "$a/run/$i.spec"
    echo "proc $i $pid $l $x"
  done
done
`

// Inspect reads the state of a host whose data path is dataPath. It
// changes nothing on the host.
func Inspect(ctx context.Context, h deployer.Host, dataPath string) (HostState, error) {
	out, err := h.Run(ctx, "D="+shellQuote(dataPath)+"\n"+probeScript, nil)
	if err != nil {
		return HostState{}, fmt.Errorf("inspecting host: %w", err)
	}
	return parseProbe(string(out))
}

func parseProbe(out string) (HostState, error) {
	var st HostState
	var cur *AppState
	for ln, line := range strings.Split(out, "\n") {
		if line == "" {
			continue
		}
		kw, rest, _ := strings.Cut(line, " ")
		if kw != "label" && kw != "ready" && kw != "app" && cur == nil {
			return st, fmt.Errorf("inspecting host: line %d: %q before any app", ln+1, line)
		}
		switch kw {
		case "label":
			st.Label = strings.TrimSpace(rest)
		case "ready":
			st.Ready = true
		case "app":
			st.Apps = append(st.Apps, AppState{Name: rest, complete: map[string]bool{}, procs: map[int]proc{}})
			cur = &st.Apps[len(st.Apps)-1]
		case "setup":
			cur.setup = rest
		case "restored":
			cur.restored = true
		case "current":
			cur.Revision = path.Base(rest)
		case "release":
			name, c, _ := strings.Cut(rest, " ")
			cur.complete[name] = c == "1"
		case "history":
			cur.History = append(cur.History, rest)
		case "proc":
			f := strings.SplitN(rest, " ", 4)
			if len(f) < 3 {
				return st, fmt.Errorf("inspecting host: line %d: %q", ln+1, line)
			}
			i, err1 := strconv.Atoi(f[0])
			pid, err2 := strconv.Atoi(f[1])
			if err1 != nil || i < 1 {
				continue // not a pid file of ours
			}
			p := proc{pid: pid, alive: err2 == nil && f[2] == "1"}
			if len(f) == 4 {
				p.spec = f[3]
			}
			cur.procs[i] = p
			if p.alive {
				cur.Running++
			}
		default:
			return st, fmt.Errorf("inspecting host: line %d: unknown %q", ln+1, kw)
		}
	}
	for i := range st.Apps {
		st.Apps[i].Releases = orderReleases(st.Apps[i])
	}
	return st, nil
}
