package converge

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

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
	deploy, err := a.render(cmdDeploy, v)
	if err != nil {
		return "", nil, err
	}
	var b strings.Builder
	// A directory left by a failed deploy is removed (rm only then: each
	// command forked counts when hundreds of hosts deploy at once).
	fmt.Fprintf(&b, "set -e\nR=%s\n[ ! -e \"$R\" ] || rm -rf \"$R\"\nmkdir -p \"$R\"\n", shellQuote(v.ReleaseDir))
	var stdin io.ReadCloser = io.NopCloser(strings.NewReader(""))
	switch art := a.Artifact; {
	case art.Path != "":
		p := art.Path
		if !filepath.IsAbs(p) && c.base != "" {
			p = filepath.Join(c.base, p)
		}
		r, gz, err := artifactStream(p)
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
