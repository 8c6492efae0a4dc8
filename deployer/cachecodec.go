package deployer

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The label cache is read at the start of every reconcile and written at
// every change, so its JSON is read and written by hand: encoding/json
// spends most of a steady reconcile of a large fleet (about 35 ms of CPU
// for 10,000 hosts) in reflection and allocation. The file stays JSON that
// encoding/json reads, one host or launch a line. The reader takes exactly
// what encoding/json would take the same way; whatever it is unsure about
// (escapes, non-ASCII, unknown keys, nulls, other number forms) it leaves
// to encoding/json, so every file written before, by hand or by
// json.MarshalIndent, still reads the same.

// errSlowPath says the fast reader left the file to encoding/json.
var errSlowPath = errors.New("label cache: not in the fast reader's subset")

// decodeCacheFile reads the file's bytes as json.Unmarshal would into
// newCacheFile(fleetName), and leaves no map nil.
func decodeCacheFile(b []byte, fleetName string) (*cacheFile, error) {
	f := &cacheFile{Version: cacheVersion, Fleet: fleetName} // as newCacheFile, maps nil until read
	if err := fastDecodeCache(b, f); err != nil {
		f = newCacheFile(fleetName)
		if err := json.Unmarshal(b, f); err != nil {
			return nil, err
		}
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

// cacheReader reads the subset of JSON the fast path handles. Strings are
// slices of s, one copy of the whole file: the hosts' ids, addresses and
// labels cost no allocation each (they keep the copy alive as long as one
// of them lives, a few hundred bytes a host).
type cacheReader struct {
	b []byte
	s string // b's copy
	i int
}

// fastDecodeCache reads b into f, or fails with errSlowPath (f is then
// partly filled).
func fastDecodeCache(b []byte, f *cacheFile) error {
	r := &cacheReader{b: b, s: string(b)}
	if !r.object(func(key string) bool {
		switch key {
		case "version":
			return r.int(&f.Version)
		case "fleet":
			return r.str(&f.Fleet)
		case "hosts":
			if f.Hosts == nil {
				// A size hint: a host a line as written here, and
				// about 150 bytes a host in a compact file.
				rest := r.s[r.i:]
				f.Hosts = make(map[string]cacheEntry, max(strings.Count(rest, "\n"), len(rest)/128))
			}
			return r.object(func(id string) bool {
				var e cacheEntry
				if !r.entry(&e) {
					return false
				}
				f.Hosts[id] = e
				return true
			})
		case "launches":
			if f.Launches == nil {
				f.Launches = make(map[string]launchRecord)
			}
			return r.object(func(label string) bool {
				var l launchRecord
				if !r.launch(&l) {
					return false
				}
				f.Launches[label] = l
				return true
			})
		case "starts":
			if f.Starts == nil {
				f.Starts = make(map[string]startRecord)
			}
			return r.object(func(id string) bool {
				var sr startRecord
				if !r.start(&sr) {
					return false
				}
				f.Starts[id] = sr
				return true
			})
		}
		return false
	}) {
		return errSlowPath
	}
	r.space()
	if r.i != len(r.s) {
		return errSlowPath
	}
	return nil
}

func (r *cacheReader) entry(e *cacheEntry) bool {
	return r.object(func(key string) bool {
		switch key {
		case "id":
			return r.str(&e.ID)
		case "address":
			return r.str(&e.Address)
		case "label":
			return r.str(&e.Label)
		case "role":
			return r.str(&e.Role)
		case "labelled_at":
			return r.time(&e.At)
		}
		return false
	})
}

func (r *cacheReader) launch(l *launchRecord) bool {
	return r.object(func(key string) bool {
		switch key {
		case "generation":
			return r.int(&l.Generation)
		case "instance_id":
			return r.str(&l.InstanceID)
		case "done":
			return r.bool(&l.Done)
		}
		return false
	})
}

func (r *cacheReader) start(sr *startRecord) bool {
	return r.object(func(key string) bool {
		switch key {
		case "failures":
			return r.int(&sr.Failures)
		case "failed_at":
			return r.time(&sr.At)
		}
		return false
	})
}

// time reads a time as encoding/json does (time.Time's UnmarshalJSON).
func (r *cacheReader) time(t *time.Time) bool {
	r.space()
	start := r.i
	var s string
	if !r.str(&s) {
		return false
	}
	return t.UnmarshalJSON(r.b[start:r.i]) == nil
}

func (r *cacheReader) space() {
	s, i := r.s, r.i
	for i < len(s) && (s[i] == ' ' || s[i] == '\n' || s[i] == '\t' || s[i] == '\r') {
		i++
	}
	r.i = i
}

// consume skips spaces and then c, reporting whether c was there.
func (r *cacheReader) consume(c byte) bool {
	r.space()
	if r.i < len(r.s) && r.s[r.i] == c {
		r.i++
		return true
	}
	return false
}

// object reads {"key": value, ...}, handing each key to member, which
// reads the value.
func (r *cacheReader) object(member func(key string) bool) bool {
	if !r.consume('{') {
		return false
	}
	if r.consume('}') {
		return true
	}
	for {
		var key string
		if !r.str(&key) || !r.consume(':') || !member(key) {
			return false
		}
		if r.consume('}') {
			return true
		}
		if !r.consume(',') {
			return false
		}
	}
}

// str reads a string of printable ASCII without escapes; anything else is
// the slow path's (encoding/json replaces invalid UTF-8, for one).
func (r *cacheReader) str(dst *string) bool {
	if !r.consume('"') {
		return false
	}
	s, start := r.s, r.i // locals: the loop keeps them in registers
	i := start
	for i < len(s) && plain[s[i]] {
		i++
	}
	if i == len(s) || s[i] != '"' {
		return false
	}
	*dst = s[start:i]
	r.i = i + 1
	return true
}

// plain holds the bytes a string may hold on the fast path: printable
// ASCII but the quote and the backslash.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x7f; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// int reads an integer in JSON's syntax (no exponent or fraction, which
// encoding/json refuses for an int field).
func (r *cacheReader) int(dst *int) bool {
	r.space()
	start := r.i
	if r.i < len(r.s) && r.s[r.i] == '-' {
		r.i++
	}
	digits := r.i
	for r.i < len(r.s) && r.s[r.i] >= '0' && r.s[r.i] <= '9' {
		r.i++
	}
	if r.i == digits || (r.s[digits] == '0' && r.i-digits > 1) {
		return false
	}
	if r.i < len(r.s) {
		switch r.s[r.i] {
		case '.', 'e', 'E':
			return false
		}
	}
	n, err := strconv.Atoi(r.s[start:r.i])
	if err != nil {
		return false
	}
	*dst = n
	return true
}

func (r *cacheReader) bool(dst *bool) bool {
	r.space()
	for _, lit := range [...]struct {
		s string
		v bool
	}{{"true", true}, {"false", false}} {
		if len(r.s)-r.i >= len(lit.s) && r.s[r.i:r.i+len(lit.s)] == lit.s {
			r.i += len(lit.s)
			*dst = lit.v
			return true
		}
	}
	return false
}

// encodeCacheFile writes the cache as JSON that encoding/json reads back
// to the same value: keys sorted, one host or launch a line.
func encodeCacheFile(f *cacheFile, b []byte) ([]byte, error) {
	b = append(b, "{\n  \"version\": "...)
	b = strconv.AppendInt(b, int64(f.Version), 10)
	b = append(b, ",\n  \"fleet\": "...)
	b = appendString(b, f.Fleet)
	b = append(b, ",\n  \"hosts\": {"...)
	ids := make([]string, 0, len(f.Hosts))
	for id := range f.Hosts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for i, id := range ids {
		e := f.Hosts[id]
		b = appendMember(b, i, id)
		b = append(b, `{"id": `...)
		b = appendString(b, e.ID)
		b = append(b, `, "address": `...)
		b = appendString(b, e.Address)
		b = append(b, `, "label": `...)
		b = appendString(b, e.Label)
		if e.Role != "" {
			b = append(b, `, "role": `...)
			b = appendString(b, e.Role)
		}
		b = append(b, `, "labelled_at": `...)
		t, err := e.At.MarshalJSON()
		if err != nil {
			return nil, err
		}
		b = append(b, t...)
		b = append(b, '}')
	}
	b = appendClose(b, len(ids))
	b = append(b, ",\n  \"launches\": {"...)
	labels := make([]string, 0, len(f.Launches))
	for l := range f.Launches {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	for i, label := range labels {
		l := f.Launches[label]
		b = appendMember(b, i, label)
		b = append(b, `{"generation": `...)
		b = strconv.AppendInt(b, int64(l.Generation), 10)
		if l.InstanceID != "" {
			b = append(b, `, "instance_id": `...)
			b = appendString(b, l.InstanceID)
		}
		if l.Done {
			b = append(b, `, "done": true`...)
		}
		b = append(b, '}')
	}
	b = appendClose(b, len(labels))
	if len(f.Starts) > 0 { // omitempty: files without failed starts are as before
		b = append(b, ",\n  \"starts\": {"...)
		ids = ids[:0]
		for id := range f.Starts {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for i, id := range ids {
			sr := f.Starts[id]
			b = appendMember(b, i, id)
			b = append(b, `{"failures": `...)
			b = strconv.AppendInt(b, int64(sr.Failures), 10)
			b = append(b, `, "failed_at": `...)
			t, err := sr.At.MarshalJSON()
			if err != nil {
				return nil, err
			}
			b = append(b, t...)
			b = append(b, '}')
		}
		b = appendClose(b, len(ids))
	}
	return append(b, "\n}\n"...), nil
}

// appendMember starts the i-th member of a map, on a line of its own.
func appendMember(b []byte, i int, key string) []byte {
	if i > 0 {
		b = append(b, ',')
	}
	b = append(b, "\n    "...)
	b = appendString(b, key)
	return append(b, ": "...)
}

// appendClose ends a map of n members.
func appendClose(b []byte, n int) []byte {
	if n > 0 {
		b = append(b, "\n  "...)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string, as encoding/json writes it.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // never fails for a string
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
