package deployer

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// sampleCache is a cache with every field set and some strings only the
// slow path reads.
func sampleCache() *cacheFile {
	f := newCacheFile("office")
	at := time.Date(2026, 3, 1, 9, 30, 0, 123456789, time.UTC)
	f.Hosts["i-1"] = cacheEntry{ID: "i-1", Address: "10.0.0.1", Label: "web-1", Role: "web", At: at}
	f.Hosts["i-2"] = cacheEntry{ID: "i-2", Address: "127.0.3.4", Label: "db-1", At: at.Add(time.Hour).In(time.FixedZone("", 3600))}
	f.Hosts["i-<3>"] = cacheEntry{ID: "i-<3>", Address: "::1", Label: "wörker-1", Role: "w\"q\\"}
	f.Launches["web-1"] = launchRecord{Generation: 1, InstanceID: "i-1", Done: true}
	f.Launches["web-2"] = launchRecord{Generation: 3}
	f.Starts["i-4"] = startRecord{Failures: 2, At: at.Add(2 * time.Hour)}
	return f
}

// slowDecode is what the cache's reader must agree with.
func slowDecode(b []byte, fleetName string) (*cacheFile, error) {
	f := newCacheFile(fleetName)
	if err := json.Unmarshal(b, f); err != nil {
		return nil, err
	}
	if f.Hosts == nil {
		f.Hosts = map[string]cacheEntry{}
	}
	if f.Launches == nil {
		f.Launches = map[string]launchRecord{}
	}
	if f.Starts == nil {
		f.Starts = map[string]startRecord{}
	}
	return f, nil
}

// sameCache compares two caches, times by instant and offset (a time read
// back has no monotonic reading and maybe another *Location).
func sameCache(t *testing.T, got, want *cacheFile) {
	t.Helper()
	norm := func(f *cacheFile) *cacheFile {
		c := *f
		c.Hosts = map[string]cacheEntry{}
		for k, e := range f.Hosts {
			_, off := e.At.Zone()
			e.At = e.At.UTC().Add(time.Duration(off) * time.Second)
			c.Hosts[k] = e
		}
		c.Starts = map[string]startRecord{}
		for k, sr := range f.Starts {
			_, off := sr.At.Zone()
			sr.At = sr.At.UTC().Add(time.Duration(off) * time.Second)
			c.Starts[k] = sr
		}
		return &c
	}
	if g, w := norm(got), norm(want); !reflect.DeepEqual(g, w) {
		t.Errorf("cache = %+v\nwant %+v", g, w)
	}
}

func TestCacheFileRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    *cacheFile
	}{
		{"empty", newCacheFile("office")},
		{"sample", sampleCache()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := encodeCacheFile(tc.f, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !json.Valid(b) {
				t.Fatalf("not JSON:\n%s", b)
			}
			got, err := decodeCacheFile(b, "office")
			if err != nil {
				t.Fatal(err)
			}
			sameCache(t, got, tc.f)
			slow, err := slowDecode(b, "office")
			if err != nil {
				t.Fatal(err)
			}
			sameCache(t, slow, tc.f)
		})
	}
}

// The file stays readable: a line per host, sorted, and the same value as
// json.MarshalIndent wrote before.
func TestCacheFileFormat(t *testing.T) {
	f := sampleCache()
	b, err := encodeCacheFile(f, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "version": 1,
  "fleet": "office",
  "hosts": {
    "i-1": {"id": "i-1", "address": "10.0.0.1", "label": "web-1", "role": "web", "labelled_at": "2026-03-01T09:30:00.123456789Z"},
    "i-2": {"id": "i-2", "address": "127.0.3.4", "label": "db-1", "labelled_at": "2026-03-01T11:30:00.123456789+01:00"},
    "i-\u003c3\u003e": {"id": "i-\u003c3\u003e", "address": "::1", "label": "wörker-1", "role": "w\"q\\", "labelled_at": "0001-01-01T00:00:00Z"}
  },
  "launches": {
    "web-1": {"generation": 1, "instance_id": "i-1", "done": true},
    "web-2": {"generation": 3}
  },
  "starts": {
    "i-4": {"failures": 2, "failed_at": "2026-03-01T11:30:00.123456789Z"}
  }
}
`
	if string(b) != want {
		t.Errorf("encoded:\n%s\nwant:\n%s", b, want)
	}
	old, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	var a, c any
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(old, &c); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(a, c) {
		t.Errorf("encoded value %v\nMarshalIndent's %v", a, c)
	}
}

// cacheDecodeSeeds are files the reader must read as encoding/json does:
// the formats written before, and what only the slow path takes.
var cacheDecodeSeeds = []string{
	`{"version":1,"fleet":"office","hosts":{"i-1":{"id":"i-1","address":"10.0.0.1","label":"web-1","role":"web","labelled_at":"2026-03-01T09:30:00Z"}},"launches":{}}`,
	`{"version": 1, "fleet": "office", "hosts": {}, "launches": {"web-1": {"generation": 2, "instance_id": "i-9", "done": false}}}`,
	`{"fleet":"office","version":1}`,
	`{"version":1,"fleet":"office","hosts":null}`,
	`{"version":1,"fleet":"office","hosts":{"i-1":{"id":"i-1","label":"caf\u00e9-1"}}}`,
	`{"version":1,"fleet":"office","hosts":{"i-1":{"ID":"i-1","Label":"web-1"}}}`,
	`{"version":1,"fleet":"office","extra":[1,2,{"x":null}],"hosts":{}}`,
	`{"version":1,"fleet":"office","hosts":{"i-1":{"id":"i-1"}},"hosts":{"i-2":{"id":"i-2"}}}`,
	`{"version":1,"fleet":"office","hosts":{"i-1":{"id":"i-1","label":"a"},"i-1":{"id":"i-1"}}}`,
	`{"version":1.0,"fleet":"office"}`,
	`{"version":1e0,"fleet":"office"}`,
	`{"version":01,"fleet":"office"}`,
	`{"version":-0,"fleet":"office"}`,
	`{"version":99999999999999999999,"fleet":"office"}`,
	`{"version":1,"fleet":"office","hosts":{"i-1":{"labelled_at":"2026-03-01T09:30:00+01:00"}}}`,
	`{"version":1,"fleet":"office","hosts":{"i-1":{"labelled_at":"2026-03-01 09:30:00Z"}}}`,
	`{"version":1,"fleet":"office","hosts":{"i-1":{"labelled_at":null}}}`,
	`{"version":1,"fleet":"office","launches":{"a":{"done":true,"generation":1}}}`,
	`{"version":1,"fleet":"office","launches":{"a":{"done":tru}}}`,
	`{"version":1,"fleet":"office","hosts":{},"launches":{},"starts":{"i-1":{"failures":1,"failed_at":"2026-03-01T09:30:00Z"}}}`,
	`{"version":1,"fleet":"office","starts":{"i-1":{"failed_at":"2026-03-01T09:30:00+02:00","failures":3},"i-2":{}}}`,
	`{"version":1,"fleet":"office","starts":null}`,
	`{"version":1,"fleet":"office","starts":{"i-1":{"failures":"1"}}}`,
	`{"version":1,"fleet":"office"} x`,
	`{"version":1,"fleet":"office",}`,
	`{"version":1,"fleet":"of` + "\x01" + `fice"}`,
	`{"version":1,"fleet":"of` + "\xff" + `fice"}`,
	` {"version" : 1 , "fleet" : "office" } `,
	`null`,
	`[]`,
	``,
}

func TestDecodeCacheFileAgreesWithEncodingJSON(t *testing.T) {
	for i, seed := range cacheDecodeSeeds {
		t.Run(fmt.Sprintf("seed%d", i), func(t *testing.T) { checkDecodeAgrees(t, []byte(seed)) })
	}
}

func FuzzDecodeCacheFile(f *testing.F) {
	for _, seed := range cacheDecodeSeeds {
		f.Add([]byte(seed))
	}
	b, err := encodeCacheFile(sampleCache(), nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(checkDecodeAgrees)
}

func checkDecodeAgrees(t *testing.T, b []byte) {
	want, wantErr := slowDecode(b, "office")
	got, err := decodeCacheFile(b, "office")
	if (err != nil) != (wantErr != nil) {
		t.Fatalf("decoding %q: error %v, encoding/json's %v", b, err, wantErr)
	}
	if err != nil {
		return
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoding %q:\n%+v\nencoding/json: %+v", b, got, want)
	}
	// The fast reader must not have read what encoding/json reads
	// differently (it leaves such files to encoding/json).
	var fast cacheFile
	if fastDecodeCache(b, &fast) == nil && strings.ContainsAny(string(b), "\\\x00") {
		t.Fatalf("fast reader took %q", b)
	}
}

// A reconcile that changes nothing leaves the file alone, and a change
// that gives the same bytes writes nothing.
func TestCacheSkipsUnchangedWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "labels.json")
	old, err := json.Marshal(sampleCache())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := loadCache(path, "office")
	if err != nil {
		t.Fatal(err)
	}
	sameCache(t, c.f, sampleCache())
	// The first write moves to the new format.
	if err := c.update(func(f *cacheFile) {}); err != nil {
		t.Fatal(err)
	}
	st1, _ := os.Stat(path)
	b1, _ := os.ReadFile(path)
	if string(b1) == string(old) {
		t.Fatal("file not rewritten in the new format")
	}
	// Rewriting the same entry writes nothing: the file is the same inode.
	if err := c.update(func(f *cacheFile) { f.Hosts["i-1"] = f.Hosts["i-1"] }); err != nil {
		t.Fatal(err)
	}
	st2, _ := os.Stat(path)
	if !os.SameFile(st1, st2) {
		t.Error("an update that changed nothing rewrote the file")
	}
	if err := c.update(func(f *cacheFile) { delete(f.Hosts, "i-1") }); err != nil {
		t.Fatal(err)
	}
	st3, _ := os.Stat(path)
	if os.SameFile(st2, st3) {
		t.Error("a change was not written")
	}
	c2, err := loadCache(path, "office")
	if err != nil {
		t.Fatal(err)
	}
	want := sampleCache()
	delete(want.Hosts, "i-1")
	sameCache(t, c2.f, want)
	// A file the reader cannot write over stays a hard error.
	if err := os.WriteFile(path, []byte(`{"version":2,"fleet":"office"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadCache(path, "office"); err == nil || errors.Is(err, errSlowPath) {
		t.Errorf("version 2: err = %v", err)
	}
}
