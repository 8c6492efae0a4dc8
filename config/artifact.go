package config

import (
	"bytes"
	"fmt"
	"text/template"
)

// ArtifactVars are what an artifact's path and s3 templates are filled
// with. They name no host: one artifact serves every host of a revision.
type ArtifactVars struct {
	App      string
	Revision string
}

// Render returns the artifact with its templates filled with v, as
// text/template does the commands' ("build/{{.App}}-{{.Revision}}.tgz").
// An error names the field whose template does not parse or execute.
func (a Artifact) Render(v ArtifactVars) (Artifact, error) {
	var err error
	if a.Path, err = renderArtifact("path", a.Path, v); err != nil {
		return Artifact{}, fmt.Errorf("artifact.path: %w", err)
	}
	if a.S3, err = renderArtifact("s3", a.S3, v); err != nil {
		return Artifact{}, fmt.Errorf("artifact.s3: %w", err)
	}
	return a, nil
}

// NamesRevision says whether the artifact differs from one revision to
// the next: its template uses {{.Revision}}. An artifact that does not is
// whatever was built last, under any revision's name. No artifact (a
// release made by the deploy command alone) names it too: the commands
// get the revision.
func (a Artifact) NamesRevision() bool {
	if a.Path == "" && a.S3 == "" {
		return true
	}
	x, err1 := a.Render(ArtifactVars{App: "app", Revision: "tide-revision-1"})
	y, err2 := a.Render(ArtifactVars{App: "app", Revision: "tide-revision-2"})
	return err1 == nil && err2 == nil && x != y
}

// Field returns the field the artifact is set in and its text: "path" or
// "s3", "" when it has none.
func (a Artifact) Field() (name, text string) {
	switch {
	case a.Path != "":
		return "path", a.Path
	case a.S3 != "":
		return "s3", a.S3
	}
	return "", ""
}

func renderArtifact(field, text string, v ArtifactVars) (string, error) {
	if text == "" {
		return "", nil
	}
	t, err := template.New(field).Option("missingkey=error").Parse(text)
	if err != nil {
		return "", fmt.Errorf("bad template: %w", err)
	}
	var b bytes.Buffer
	if err := t.Execute(&b, v); err != nil {
		return "", fmt.Errorf("bad template (an artifact may use {{.App}} and {{.Revision}} only): %w", err)
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("template %q renders empty for revision %q", text, v.Revision)
	}
	return b.String(), nil
}
