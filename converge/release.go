package converge

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/tideops/tide/config"
	"github.com/tideops/tide/fleet"
	"github.com/tideops/tide/objstore"
)

// presignTTL is how long a host may take to start fetching an artifact.
const presignTTL = 15 * time.Minute

// deployRelease puts a's revision into releases/<revision>: the artifact,
// then the deploy command run there, then the completion marker. A release
// left without its marker is removed and done again.
func (c *Converger) deployRelease(ctx context.Context, t *target, a *app, v Vars) error {
	script, stdin, err := c.releaseScript(ctx, a, v)
	if err != nil {
		return err
	}
	defer stdin.Close()
	_, err = t.h.Run(ctx, script, stdin)
	return err
}

// releaseScript returns the script deployRelease runs and what it reads
// on stdin (to be closed by the caller). The script runs with set -e and
// ends with set +e, so that more may follow it in the same session, run
// only when the release is complete; its last line prints releasedMark.
func (c *Converger) releaseScript(ctx context.Context, a *app, v Vars) (string, io.ReadCloser, error) {
	if err := c.canBuild(a, v.Label); err != nil {
		return "", nil, err
	}
	art, err := c.artifact(a)
	if err != nil {
		return "", nil, err
	}
	deploy, err := a.render(cmdDeploy, v)
	if err != nil {
		return "", nil, err
	}
	var b strings.Builder
	// A directory left by a failed deploy is removed (rm only then: each
	// command forked counts when hundreds of hosts deploy at once).
	fmt.Fprintf(&b, "set -e\nR=%s\n[ ! -e \"$R\" ] || rm -rf \"$R\"\nmkdir -p \"$R\"\n", shellQuote(v.ReleaseDir))
	var stdin io.ReadCloser = io.NopCloser(strings.NewReader(""))
	switch {
	case art.Path != "":
		r, gz, err := artifactStream(art.Path)
		if err != nil {
			return "", nil, fmt.Errorf("%w: artifact: %w", errConfig, err)
		}
		stdin = r
		z := ""
		if gz {
			z = "z"
		}
		fmt.Fprintf(&b, "tar -x%sf - -C \"$R\"\n", z)
	case art.S3 != "":
		bucket, key, err := objstore.ParseS3URL(art.S3)
		if err != nil {
			return "", nil, fmt.Errorf("%w: artifact: %w", errConfig, err)
		}
		url, err := c.o.Presigner.PresignGet(ctx, bucket, key, presignTTL)
		if err != nil {
			return "", nil, err
		}
		// The URL is a credential until it expires: it goes on stdin,
		// never on a command line a process listing shows.
		stdin = io.NopCloser(strings.NewReader(url + "\n"))
		curlCA, wgetCA := "", ""
		if c.o.FetchCAFile != "" {
			curlCA = " --cacert " + shellQuote(c.o.FetchCAFile)
			wgetCA = " --ca-certificate=" + shellQuote(c.o.FetchCAFile)
		}
		fmt.Fprintf(&b, `read -r U
F="$R/.tide-artifact"
if command -v curl >/dev/null 2>&1; then curl -fsS --retry 3%s -o "$F" --url "$U"
else wget -q%s -O "$F" -i - <<EOF_URL
$U
EOF_URL
fi
`, curlCA, wgetCA)
		switch base := path.Base(key); {
		case strings.HasSuffix(base, ".tar.gz"), strings.HasSuffix(base, ".tgz"):
			b.WriteString("tar -xzf \"$F\" -C \"$R\"\nrm -f \"$F\"\n")
		case strings.HasSuffix(base, ".tar"):
			b.WriteString("tar -xf \"$F\" -C \"$R\"\nrm -f \"$F\"\n")
		default:
			fmt.Fprintf(&b, "mv -f \"$F\" \"$R\"/%s\n", shellQuote(base))
		}
	}
	if deploy != "" {
		fmt.Fprintf(&b, "cd \"$R\"\n%s\n", runCmd(deploy, v.env()))
	}
	fmt.Fprintf(&b, "printf '%%s\\n' %s > \"$R/.tide-release\"\nset +e\necho %s\n", shellQuote(a.Revision), releasedMark)
	return b.String(), stdin, nil
}

// artifact returns a's artifact for its revision: the templates filled
// in, a relative path made absolute against the schedule file's directory.
func (c *Converger) artifact(a *app) (config.Artifact, error) {
	art, err := a.Artifact.Render(config.ArtifactVars{App: a.Name, Revision: a.Revision})
	if err != nil {
		return art, &TemplateError{App: a.Name, Command: "artifact", Err: err}
	}
	if art.Path != "" && !filepath.IsAbs(art.Path) && c.base != "" {
		art.Path = filepath.Join(c.base, art.Path)
	}
	return art, nil
}

// WithArtifactRevision returns a converger that takes appName's artifact,
// when it does not name {{.Revision}}, to hold rev's build, and is
// otherwise the same. Such an artifact is whatever was built last: the
// release of rev may be made from it on a host that lacks it, the release
// of no other revision may (such a host fails, see NotRebuildableError).
// Without it, the artifact holds the schedule file's revision. tide passes
// what the revisions file recorded (Deployed.ArtifactRevision), and a
// deploy of a revision new to the history passes that revision.
func (c *Converger) WithArtifactRevision(appName, rev string) (*Converger, error) {
	a := c.apps[appName]
	if a == nil {
		return nil, fmt.Errorf("no application %q in the schedule", appName)
	}
	if a.built == rev || a.Revision == "" {
		return c, nil // an application without a revision deploys nothing
	}
	n, err := c.WithRevision(appName, a.Revision) // a copy of c, and of a
	if err != nil {
		return nil, err
	}
	n.apps[appName].built = rev
	return n, nil
}

// builtRevision is the revision a's artifact holds when it does not name
// its revision.
func (c *Converger) builtRevision(a *app) string {
	if a.built != "" {
		return a.built
	}
	sa, _ := c.s.Application(a.Name)
	return sa.Revision
}

// canBuild returns nil when a's release may be made from its artifact,
// else a *NotRebuildableError naming the hosts (labels) that lack it.
func (c *Converger) canBuild(a *app, labels ...string) error {
	if a.byRevision || a.Revision == c.builtRevision(a) {
		return nil
	}
	field, text := a.Artifact.Field()
	return &NotRebuildableError{App: a.Name, Revision: a.Revision, Field: field, Artifact: text, Built: c.builtRevision(a), Labels: labels}
}

// NotRebuildableError says hosts lack the release of a revision that
// cannot be made again: the application's artifact does not name
// {{.Revision}}, and holds the build of another revision (Built). Only
// hosts that still hold the release complete can take the revision. It
// is a configuration error: retrying does not fix it.
type NotRebuildableError struct {
	App, Revision string
	// Field is the artifact's field ("path" or "s3"), Artifact its text.
	Field, Artifact string
	// Built is the revision the artifact holds.
	Built string
	// Labels are the hosts lacking the release (those that could not be
	// read say so).
	Labels []string
}

func (e *NotRebuildableError) Error() string {
	who := "the host has"
	switch len(e.Labels) {
	case 0:
	case 1:
		who = e.Labels[0] + " has"
	default:
		who = strings.Join(e.Labels, ", ") + " have"
	}
	return fmt.Sprintf("%s no release %s of %s, and the artifact %s %q does not name {{.Revision}}: %s cannot be rebuilt from it (it holds %s's build)",
		who, e.Revision, e.App, e.Field, e.Artifact, e.Revision, e.Built)
}

// Unwrap makes the error permanent (isPermanent): no retry, and no new
// host, fixes it.
func (e *NotRebuildableError) Unwrap() error { return errConfig }

// ErrRolloutRefused says a rollout changed no host: what some host lacks
// cannot be deployed.
var ErrRolloutRefused = errors.New("rollout refused before any host was changed")

// objectStater is what preflight asks of the Presigner, when it can, to
// check an S3 artifact exists (objstore/s3's Client can).
type objectStater interface {
	StatObject(ctx context.Context, bucket, key string) (objstore.Info, error)
}

// preflight checks, before a rollout changes any host, that each of apps'
// releases can be made on the hosts (groups, in rollout order) that lack
// it: its artifact exists (a local file or directory; an S3 object, when
// the Presigner can say), and an artifact that does not name
// {{.Revision}} holds the revision's build. Hosts are read (Inspect) only
// when a release cannot be made: then the error, wrapping
// ErrRolloutRefused, names the hosts that lack it. A host that cannot be
// read counts as lacking it.
func (c *Converger) preflight(ctx context.Context, conn Connector, groups [][]fleet.Instance, apps []string) error {
	var states map[string]*HostState // by instance ID, read once
	var errs []error
	for _, a := range c.s.Applications {
		if len(apps) > 0 && !slices.Contains(apps, a.Name) {
			continue
		}
		pa := c.apps[a.Name]
		if pa.Revision == "" {
			continue
		}
		var hosts []fleet.Instance
		for _, g := range groups {
			for _, in := range g {
				if slices.ContainsFunc(c.appsOf(roleOfInstance(in)), func(x *app) bool { return x.Name == a.Name }) {
					hosts = append(hosts, in)
				}
			}
		}
		if len(hosts) == 0 {
			continue
		}
		problem := c.canBuild(pa)
		if problem == nil {
			art, err := c.artifact(pa)
			if err != nil {
				return err
			}
			if art.Path != "" {
				if _, err := os.Stat(art.Path); err != nil {
					problem = fmt.Errorf("application %s: revision %s: artifact %s: %w", a.Name, pa.Revision, art.Path, err)
				}
			}
			if st, ok := c.o.Presigner.(objectStater); ok && art.S3 != "" {
				bucket, key, err := objstore.ParseS3URL(art.S3)
				if err == nil {
					_, err = st.StatObject(ctx, bucket, key)
				}
				if err != nil {
					problem = fmt.Errorf("application %s: revision %s: artifact %s: %w", a.Name, pa.Revision, art.S3, err)
				}
			}
		}
		if problem == nil {
			continue
		}
		if states == nil {
			states = c.inspectAll(ctx, conn, groups)
		}
		var lacking []string
		for _, in := range hosts {
			st := states[in.ID]
			if st == nil {
				lacking = append(lacking, labelOf(in)+" (could not be read)")
				continue
			}
			if as, _ := st.App(a.Name); !as.complete[pa.Revision] {
				lacking = append(lacking, labelOf(in))
			}
		}
		if len(lacking) == 0 {
			continue
		}
		var nr *NotRebuildableError
		if errors.As(problem, &nr) {
			nr.Labels = lacking
			errs = append(errs, nr)
		} else {
			errs = append(errs, fmt.Errorf("%w; needed by %s", problem, strings.Join(lacking, ", ")))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrRolloutRefused, errors.Join(errs...))
}

// inspectAll reads every host's state, a few at a time; a host that
// cannot be read has none.
func (c *Converger) inspectAll(ctx context.Context, conn Connector, groups [][]fleet.Instance) map[string]*HostState {
	out := map[string]*HostState{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, g := range groups {
		for _, in := range g {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sem <- struct{}{}
				defer func() { <-sem }()
				h, err := conn.Connect(ctx, in)
				if err != nil {
					c.log.Warn("reading host before rollout failed", "label", labelOf(in), "err", err)
					return
				}
				defer h.Close()
				st, err := Inspect(ctx, h, DataPath(c.s, in))
				if err != nil {
					c.log.Warn("reading host before rollout failed", "label", labelOf(in), "err", err)
					return
				}
				mu.Lock()
				out[in.ID] = &st
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	return out
}

// releasedMark is the line a release script prints once the release is
// complete.
const releasedMark = "tide-release-complete"

// artifactStream returns a tar stream of a local artifact: a directory's
// contents, a tarball as it is (gz says it is compressed), or any other
// file as a tar of that one file.
func artifactStream(p string) (rc io.ReadCloser, gz bool, err error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, false, err
	}
	name := filepath.Base(p)
	if !fi.IsDir() {
		switch {
		case strings.HasSuffix(name, ".tar.gz"), strings.HasSuffix(name, ".tgz"):
			f, err := os.Open(p)
			return f, true, err
		case strings.HasSuffix(name, ".tar"):
			f, err := os.Open(p)
			return f, false, err
		}
	}
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		var err error
		if fi.IsDir() {
			err = tw.AddFS(os.DirFS(p))
		} else {
			err = addFile(tw, p, name, fi)
		}
		if cerr := tw.Close(); err == nil {
			err = cerr
		}
		pw.CloseWithError(err)
	}()
	return pr, false, nil
}

func addFile(tw *tar.Writer, p, name string, fi fs.FileInfo) error {
	hdr, err := tar.FileInfoHeader(fi, "")
	if err != nil {
		return err
	}
	hdr.Name = name
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(tw, f)
	return err
}
