package config

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// FuzzParse checks that no input makes Parse panic, that every failure is
// reported as Problems with positions inside the file, and that a schedule
// Parse accepts has windows that compile. The examples are the seed corpus.
//
//	go test -fuzz=FuzzParse ./config
func FuzzParse(f *testing.F) {
	for _, file := range exampleFiles(f) {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, seed := range []string{
		"", "---", "name: t\n", base,
		base + "    policies:\n      schedule:\n        - start: \"0 25 * * *\"\n          duration: 1h\n",
		base + "    policies:\n      windows:\n        - from: 2026-04-02T00:00:00Z\n          until: 2026-04-01T00:00:00Z\n",
		"a: &a [*a]\n", "roles:\n  - <<: {name: web}\n    max: 3\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("f.yaml", data, WithNow(refNow))
		if err != nil {
			var ps Problems
			if !errors.As(err, &ps) || len(ps) == 0 {
				t.Fatalf("error is not Problems: %T %v", err, err)
			}
			lines := bytes.Count(data, []byte("\n")) + 2
			for _, p := range ps {
				if p.File != "f.yaml" || p.Line < 0 || p.Line > lines || p.Col < 0 || p.Msg == "" {
					t.Fatalf("bad problem %+v in\n%v", p, ps)
				}
			}
			return
		}
		for _, r := range s.Roles {
			if _, err := s.Windows(r.Name); err != nil {
				t.Fatalf("valid schedule, but role %s's windows do not compile: %v", r.Name, err)
			}
		}
	})
}
