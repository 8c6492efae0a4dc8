package converge_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tideops/tide/config"
	"github.com/tideops/tide/converge"
)

// historyStep is one move on an application's history: "deploy" or "rollback".
type historyStep struct{ op, rev string }

func applySteps(d converge.Deployed, steps []historyStep) converge.Deployed {
	for _, s := range steps {
		switch s.op {
		case "deploy":
			d = d.Deploy(s.rev)
		case "rollback":
			d = d.Rollback(s.rev)
		default:
			panic("unknown step " + s.op)
		}
	}
	return d
}

func recordAt(rev string, history ...string) converge.Deployed {
	return converge.Deployed{Revision: rev, History: history}
}

func TestRevisionHistory(t *testing.T) {
	var many []historyStep
	for i := 1; i <= converge.HistoryLimit+5; i++ {
		many = append(many, historyStep{"deploy", fmt.Sprintf("v%d", i)})
	}
	var last20 []string
	for i := 6; i <= converge.HistoryLimit+5; i++ {
		last20 = append(last20, fmt.Sprintf("v%d", i))
	}
	for _, tc := range []struct {
		name     string
		start    converge.Deployed
		steps    []historyStep
		history  []string
		revision string
		previous string
		back     string // "" when a rollback has nowhere to go
	}{
		{name: "nothing recorded"},
		{name: "deploys append",
			steps:   []historyStep{{"deploy", "v1"}, {"deploy", "v2"}, {"deploy", "v3"}},
			history: []string{"v1", "v2", "v3"}, revision: "v3", previous: "v2", back: "v2"},
		{name: "one rollback goes one step back",
			start: recordAt("v3", "v1", "v2", "v3"), steps: []historyStep{{"rollback", "v2"}},
			history: []string{"v1", "v2", "v3"}, revision: "v2", previous: "v1", back: "v1"},
		{name: "rollbacks walk further back, down to nothing",
			start: recordAt("v3", "v1", "v2", "v3"), steps: []historyStep{{"rollback", "v2"}, {"rollback", "v1"}},
			history: []string{"v1", "v2", "v3"}, revision: "v1"},
		{name: "a deploy after rollbacks drops the revisions rolled back from",
			start: recordAt("v1", "v1", "v2", "v3"), steps: []historyStep{{"deploy", "v4"}},
			history: []string{"v1", "v4"}, revision: "v4", previous: "v1", back: "v1"},
		{name: "deploying the current revision again drops the ones rolled back from",
			start: recordAt("v2", "v1", "v2", "v3"), steps: []historyStep{{"deploy", "v2"}},
			history: []string{"v1", "v2"}, revision: "v2", previous: "v1", back: "v1"},
		{name: "a revision deployed again moves to the end",
			start: recordAt("v3", "v1", "v2", "v3"), steps: []historyStep{{"deploy", "v1"}},
			history: []string{"v2", "v3", "v1"}, revision: "v1", previous: "v3", back: "v3"},
		{name: "a rollback to a revision rolled back from goes forward again",
			start: recordAt("v1", "v1", "v2", "v3"), steps: []historyStep{{"rollback", "v3"}},
			history: []string{"v1", "v2", "v3"}, revision: "v3", previous: "v2", back: "v2"},
		{name: "a rollback to a revision the history lacks starts a branch",
			start: recordAt("v2", "v1", "v2", "v3"), steps: []historyStep{{"rollback", "v0"}},
			history: []string{"v1", "v2", "v0"}, revision: "v0", previous: "v2", back: "v2"},
		{name: "a rollback to the current revision changes nothing",
			start: recordAt("v2", "v1", "v2", "v3"), steps: []historyStep{{"rollback", "v2"}},
			history: []string{"v1", "v2", "v3"}, revision: "v2", previous: "v1", back: "v1"},
		{name: "a file from before History: previous then revision",
			start:   converge.Deployed{Revision: "v2", Previous: "v1"},
			history: []string{"v1", "v2"}, revision: "v2", previous: "v1", back: "v1"},
		{name: "a file from before History, then a deploy",
			start: converge.Deployed{Revision: "v2", Previous: "v1"}, steps: []historyStep{{"deploy", "v3"}},
			history: []string{"v1", "v2", "v3"}, revision: "v3", previous: "v2", back: "v2"},
		{name: "a file from before History without previous",
			start:   converge.Deployed{Revision: "v1"},
			history: []string{"v1"}, revision: "v1"},
		{name: "a history that lost its revision gets it back at the end",
			start:   recordAt("x", "a", "b"),
			history: []string{"a", "b", "x"}, revision: "x", back: "b"},
		{name: "the history keeps the newest HistoryLimit revisions",
			steps: many, history: last20, revision: last20[len(last20)-1], previous: last20[len(last20)-2], back: last20[len(last20)-2]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.start.History)
			d := applySteps(tc.start, tc.steps)
			if !slices.Equal(tc.start.History, before) {
				t.Errorf("the moves changed the start's history: %q, was %q", tc.start.History, before)
			}
			history, cur := d.Branch()
			if !slices.Equal(history, tc.history) {
				t.Errorf("history %q, want %q", history, tc.history)
			}
			if d.Revision != tc.revision {
				t.Errorf("revision %q, want %q", d.Revision, tc.revision)
			}
			// Moves write Previous for older readers; a start is as read.
			if len(tc.steps) > 0 && d.Previous != tc.previous {
				t.Errorf("previous %q, want %q", d.Previous, tc.previous)
			}
			if tc.revision == "" && cur != -1 || tc.revision != "" && (cur < 0 || history[cur] != tc.revision) {
				t.Errorf("current index %d in %q, want that of %q", cur, history, tc.revision)
			}
			if len(history) > converge.HistoryLimit {
				t.Errorf("%d revisions kept, limit %d", len(history), converge.HistoryLimit)
			}
			back, ok := d.Back()
			if back != tc.back || ok != (tc.back != "") {
				t.Errorf("Back() = %q, %v, want %q", back, ok, tc.back)
			}
		})
	}
}

func TestRevisionsCurrent(t *testing.T) {
	for _, tc := range []struct {
		name     string
		schedule string // the application's revision in the schedule file
		rec      *converge.Deployed
		history  []string
		revision string
	}{
		{name: "nothing recorded: the schedule's revision", schedule: "1.0",
			history: []string{"1.0"}, revision: "1.0"},
		{name: "a deploy the schedule still allows", schedule: "1.0",
			rec:     &converge.Deployed{Revision: "1.2", History: []string{"1.0", "1.1", "1.2"}, ScheduleRevision: "1.0"},
			history: []string{"1.0", "1.1", "1.2"}, revision: "1.2"},
		{name: "an edited schedule was applied on top of the deploys", schedule: "2.0",
			rec:     &converge.Deployed{Revision: "1.2", History: []string{"1.0", "1.1", "1.2"}, ScheduleRevision: "1.0"},
			history: []string{"1.0", "1.1", "1.2", "2.0"}, revision: "2.0"},
		{name: "an edited schedule applied after rollbacks starts a branch", schedule: "2.0",
			rec:     &converge.Deployed{Revision: "1.1", History: []string{"1.0", "1.1", "1.2"}, ScheduleRevision: "1.0"},
			history: []string{"1.0", "1.1", "2.0"}, revision: "2.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &config.Schedule{Applications: []config.Application{{Name: "shop", Revision: tc.schedule}}}
			r := converge.Revisions{Apps: map[string]converge.Deployed{}}
			if tc.rec != nil {
				r.Apps["shop"] = *tc.rec
			}
			d := r.Current(s, "shop")
			if h, _ := d.Branch(); !slices.Equal(h, tc.history) || d.Revision != tc.revision {
				t.Errorf("current %q in %q, want %q in %q", d.Revision, h, tc.revision, tc.history)
			}
			if got := r.Effective(s)["shop"]; got != tc.revision {
				t.Errorf("Current says %q, Effective %q", tc.revision, got)
			}
		})
	}
}

// TestRevisionsFileBeforeHistory reads a file written before History
// existed, and round-trips one with a history.
func TestRevisionsFileBeforeHistory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "revisions.json")
	old := `{"apps": {"shop": {"revision": "1.1", "previous": "1.0", "schedule_revision": "1.0", "at": "2025-01-02T03:04:05Z"}}}`
	if err := os.WriteFile(path, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := converge.LoadRevisions(path)
	if err != nil {
		t.Fatal(err)
	}
	if back, ok := r.Apps["shop"].Back(); !ok || back != "1.0" {
		t.Errorf("old file: Back() = %q, %v, want 1.0", back, ok)
	}
	r.Apps["shop"] = r.Apps["shop"].Deploy("1.2").Rollback("1.1")
	if err := r.Save(path); err != nil {
		t.Fatal(err)
	}
	again, err := converge.LoadRevisions(path)
	if err != nil {
		t.Fatal(err)
	}
	d := again.Apps["shop"]
	if h, cur := d.Branch(); !slices.Equal(h, []string{"1.0", "1.1", "1.2"}) || cur != 1 || d.Previous != "1.0" || d.ScheduleRevision != "1.0" {
		t.Errorf("saved and read back: %+v", d)
	}
}

func TestRevisionsPrecedence(t *testing.T) {
	s := &config.Schedule{Applications: []config.Application{{Name: "web", Revision: "2.0"}, {Name: "db", Revision: "1"}}}
	for _, tc := range []struct {
		name string
		rec  map[string]converge.Deployed
		want map[string]string
	}{
		{"nothing deployed", nil, map[string]string{"web": "2.0", "db": "1"}},
		{"deployed over the same file", map[string]converge.Deployed{"web": {Revision: "2.1", ScheduleRevision: "2.0"}},
			map[string]string{"web": "2.1", "db": "1"}},
		{"file edited since", map[string]converge.Deployed{"web": {Revision: "2.1", ScheduleRevision: "1.9"}},
			map[string]string{"web": "2.0", "db": "1"}},
		{"application gone from the file", map[string]converge.Deployed{"old": {Revision: "9", ScheduleRevision: "9"}},
			map[string]string{"web": "2.0", "db": "1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := converge.Revisions{Apps: tc.rec}.Effective(s)
			if len(got) != len(tc.want) || got["web"] != tc.want["web"] || got["db"] != tc.want["db"] {
				t.Errorf("Effective = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestRevisionsFile(t *testing.T) {
	path := converge.RevisionsPath(t.TempDir(), "fleet")
	r, err := converge.LoadRevisions(path)
	if err != nil || len(r.Apps) != 0 {
		t.Fatalf("missing file: %+v, %v", r, err)
	}
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	r.Apps["web"] = converge.Deployed{Revision: "2.1", Previous: "2.0", History: []string{"2.0", "2.1"}, ScheduleRevision: "2.0", At: at}
	if err := r.Save(path); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".revisions*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
	back, err := converge.LoadRevisions(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := back.Apps["web"]; !reflect.DeepEqual(got, r.Apps["web"]) {
		t.Errorf("read back %+v, want %+v", got, r.Apps["web"])
	}
}

// TestRevisionsBuilt follows which revision's build an artifact that does
// not name {{.Revision}} holds: the one last deployed as new.
func TestRevisionsBuilt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start converge.Deployed
		steps []historyStep
		want  string
	}{
		{name: "nothing recorded"},
		{name: "deploys", steps: []historyStep{{"deploy", "v1"}, {"deploy", "v2"}, {"deploy", "v3"}}, want: "v3"},
		{name: "rollbacks keep it", steps: []historyStep{{"deploy", "v1"}, {"deploy", "v2"}, {"deploy", "v3"}, {"rollback", "v2"}, {"rollback", "v1"}}, want: "v3"},
		{name: "a deploy of a revision rolled back from is no new build",
			steps: []historyStep{{"deploy", "v1"}, {"deploy", "v2"}, {"deploy", "v3"}, {"rollback", "v1"}, {"deploy", "v2"}}, want: "v3"},
		{name: "a deploy of an earlier revision is no new build",
			steps: []historyStep{{"deploy", "v1"}, {"deploy", "v2"}, {"deploy", "v1"}}, want: "v2"},
		{name: "a rollback to a release only on hosts is no new build",
			start: converge.Deployed{Revision: "v2", History: []string{"v1", "v2"}, Built: "v2"}, steps: []historyStep{{"rollback", "v0"}}, want: "v2"},
		{name: "a file from before Built: the newest of the history",
			start: recordAt("v1", "v1", "v2", "v3"), want: "v3"},
		{name: "a file from before Built, rolled back to a release only on hosts",
			start: recordAt("v1", "v1", "v2", "v3"), steps: []historyStep{{"rollback", "v0"}}, want: "v3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := applySteps(tc.start, tc.steps).ArtifactRevision(); got != tc.want {
				t.Errorf("ArtifactRevision() = %q, want %q", got, tc.want)
			}
		})
	}
	// An applied edit of the schedule names what its artifact holds, even
	// a revision of the history.
	s := &config.Schedule{Applications: []config.Application{{Name: "shop", Revision: "1.0"}, {Name: "cart", Revision: "7"}}}
	r := converge.Revisions{Apps: map[string]converge.Deployed{
		"shop": {Revision: "1.2", History: []string{"1.0", "1.1", "1.2"}, ScheduleRevision: "0.9", Built: "1.2"},
		"cart": {Revision: "6", History: []string{"5", "6", "8"}, ScheduleRevision: "7", Built: "8"},
	}}
	if got, want := r.Artifacts(s), map[string]string{"shop": "1.0", "cart": "8"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Artifacts = %v, want %v", got, want)
	}
}

// counterApp is the application the lock tests count updates in.
const counterApp = "counter"

func increment(r *converge.Revisions) error {
	n, _ := strconv.Atoi(r.Apps[counterApp].Revision)
	r.Apps[counterApp] = converge.Deployed{Revision: strconv.Itoa(n + 1)}
	return nil
}

func counted(t *testing.T, path string) int {
	t.Helper()
	r, err := converge.LoadRevisions(path)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := strconv.Atoi(r.Apps[counterApp].Revision)
	return n
}

// TestUpdateRevisionsLosesNoUpdate races read-modify-writes of the file
// from goroutines of this process and of a second one: every one counts.
func TestUpdateRevisionsLosesNoUpdate(t *testing.T) {
	ctx := context.Background()
	path := converge.RevisionsPath(t.TempDir(), "fleet")
	const workers, each = 4, 25
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestUpdateRevisionsWorker$")
	cmd.Env = append(os.Environ(), "TIDE_TEST_REVISIONS="+path, "TIDE_TEST_UPDATES="+strconv.Itoa(workers*each))
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				errs <- converge.UpdateRevisions(ctx, path, increment)
			}
		}()
	}
	wg.Wait()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("the other process: %v\n%s", err, stderr.String())
	}
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got, want := counted(t, path), 2*workers*each; got != want {
		t.Errorf("counted %d updates, want %d: some were lost", got, want)
	}
}

// TestUpdateRevisionsWorker is the second process of
// TestUpdateRevisionsLosesNoUpdate; run alone, it does nothing.
func TestUpdateRevisionsWorker(t *testing.T) {
	path := os.Getenv("TIDE_TEST_REVISIONS")
	if path == "" {
		return
	}
	n, _ := strconv.Atoi(os.Getenv("TIDE_TEST_UPDATES"))
	for range n {
		if err := converge.UpdateRevisions(context.Background(), path, increment); err != nil {
			t.Fatal(err)
		}
	}
}

// TestUpdateRevisionsWaitsForTheLock holds the lock in one update: another
// waits, gives up when its context ends with an error saying who holds it,
// and a third gets the lock once the first is done. A failing update and
// one that changes nothing write nothing.
func TestUpdateRevisionsWaitsForTheLock(t *testing.T) {
	ctx := context.Background()
	path := converge.RevisionsPath(t.TempDir(), "fleet")
	holding, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- converge.UpdateRevisions(ctx, path, func(r *converge.Revisions) error {
			close(holding)
			<-release
			return increment(r)
		})
	}()
	<-holding
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := converge.UpdateRevisions(short, path, increment)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), fmt.Sprintf("revisions file locked by another tide command (pid %d)", os.Getpid())) {
		t.Errorf("waiting for a held lock: %v, want a deadline error naming the holder", err)
	}
	third := make(chan error, 1)
	go func() { third <- converge.UpdateRevisions(ctx, path, increment) }()
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := <-third; err != nil {
		t.Fatal(err)
	}
	if got := counted(t, path); got != 2 {
		t.Errorf("counted %d, want 2 (the update that gave up must not count)", got)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := converge.UpdateRevisions(ctx, path, func(r *converge.Revisions) error {
		r.Apps = nil
		return boom
	}); !errors.Is(err, boom) {
		t.Errorf("failing update: %v, want its error", err)
	}
	if err := converge.UpdateRevisions(ctx, path, func(*converge.Revisions) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if again, err := os.Stat(path); err != nil || !os.SameFile(fi, again) || counted(t, path) != 2 {
		t.Errorf("a failing or empty update rewrote the file (%v)", err)
	}
}
