package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// Option changes how Load and Parse work.
type Option func(*options)

type options struct {
	now time.Time
}

// WithNow sets the instant validation measures time from: conflicting
// windows are looked for in the year after it. The default is time.Now();
// tests pass a fixed instant so that results do not depend on the date.
func WithNow(t time.Time) Option { return func(o *options) { o.now = t } }

// Load reads, decodes and validates the schedule file at path. A file that
// cannot be read gives a wrapped *os.PathError; a file with problems gives
// Problems.
func Load(path string, opts ...Option) (*Schedule, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading schedule: %w", err)
	}
	return Parse(path, data, opts...)
}

// Parse decodes and validates a schedule file's contents; file names it in
// problems. Decoding is strict: unknown fields and values of the wrong type
// are problems. Defaults are applied to fields the file leaves out, then the
// schedule is validated. Every problem found is returned, as Problems.
func Parse(file string, data []byte, opts ...Option) (*Schedule, error) {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	if o.now.IsZero() {
		o.now = time.Now()
	}
	s, ps := decode(file, data)
	if s == nil {
		sortProblems(ps)
		return nil, ps
	}
	s.applyDefaults()
	var more Problems
	if err := s.Validate(o.now); err != nil && !errors.As(err, &more) {
		return nil, err
	}
	if ps = append(ps, more...); len(ps) > 0 {
		sortProblems(ps)
		return nil, ps
	}
	return s, nil
}

// maxNodes bounds the work the structural walk does, so that a file built
// from nested aliases cannot make it run for ever. Real schedule files have
// a few hundred nodes.
const maxNodes = 100_000

// decode turns data into a Schedule, or reports every structural problem:
// syntax errors, unknown fields, values of the wrong type.
func decode(file string, data []byte) (s *Schedule, ps Problems) {
	defer func() {
		// yaml.v3 has panicked on hostile input before; a schedule file must
		// never take the process down.
		if r := recover(); r != nil {
			s, ps = nil, Problems{{File: file, Msg: fmt.Sprintf("yaml: internal error: %v", r)}}
		}
	}()
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil && !errors.Is(err, io.EOF) {
		return nil, Problems{syntaxProblem(file, err)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, Problems{syntaxProblem(file, err)}
	default:
		return nil, Problems{{File: file, Line: extra.Line, Col: extra.Column, Msg: "a schedule file holds one YAML document; found a second one"}}
	}

	w := &walker{file: file, pos: newPositions()}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	s = &Schedule{}
	if root.Kind != 0 && root.Kind != yaml.DocumentNode {
		w.walk(root, reflect.TypeOf(Schedule{}), "")
		if w.fatal {
			return nil, w.problems
		}
		// Unknown fields alone do not stop the rest of the file from being
		// checked: decode without them and report them with the others.
		d := yaml.NewDecoder(bytes.NewReader(data))
		d.KnownFields(len(w.problems) == 0)
		if err := d.Decode(s); err != nil && !errors.Is(err, io.EOF) {
			// The walk should have caught anything the decoder refuses; if
			// not, report the decoder's own words at the line it names.
			return nil, decoderProblems(file, err, w.pos)
		}
	}
	s.File = file
	s.pos = w.pos
	return s, w.problems
}

var lineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): `)

// syntaxProblem turns a yaml.v3 parse error into a problem at its line.
func syntaxProblem(file string, err error) Problem {
	msg := err.Error()
	p := Problem{File: file}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		msg = msg[len(m[0]):]
	}
	p.Msg = "bad YAML: " + strings.TrimPrefix(msg, "yaml: ")
	return p
}

// decoderProblems maps the strict decoder's "line N: ..." messages to
// problems at the first node on that line.
func decoderProblems(file string, err error, pos *positions) Problems {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return Problems{syntaxProblem(file, err)}
	}
	var ps Problems
	for _, e := range te.Errors {
		p := Problem{File: file, Msg: e}
		if m := lineRE.FindStringSubmatch(e); m != nil {
			p.Line, _ = strconv.Atoi(m[1])
			p.Msg = e[len(m[0]):]
			p.Path, p.Col = pos.firstOnLine(p.Line)
		}
		ps = append(ps, p)
	}
	return ps
}

// pos is a position in the file.
type pos struct{ line, col int }

// positions records where each field path's key and value are in the file.
type positions struct {
	vals map[string]pos
	keys map[string]pos
}

func newPositions() *positions {
	return &positions{vals: map[string]pos{}, keys: map[string]pos{}}
}

// has reports whether the file sets the field at path.
func (p *positions) has(path string) bool {
	if p == nil {
		return false
	}
	_, ok := p.vals[path]
	return ok
}

// at returns the position of the value at path or, when the file does not
// set it, of the nearest enclosing value that it does set.
func (p *positions) at(path string) pos {
	if p == nil {
		return pos{}
	}
	for {
		if v, ok := p.vals[path]; ok {
			return v
		}
		if path == "" {
			return pos{}
		}
		path = parentPath(path)
	}
}

// keyAt returns the position of the key that sets path, or of its value
// when there is no key (a sequence element).
func (p *positions) keyAt(path string) pos {
	if p != nil {
		if k, ok := p.keys[path]; ok {
			return k
		}
	}
	return p.at(path)
}

// firstOnLine returns the path and column of the leftmost value on a line.
func (p *positions) firstOnLine(line int) (string, int) {
	best, bestCol := "", 0
	for path, v := range p.vals {
		if v.line == line && (bestCol == 0 || v.col < bestCol || v.col == bestCol && path < best) {
			best, bestCol = path, v.col
		}
	}
	return best, bestCol
}

// parentPath strips the last element of a field path:
// "roles[1].min" -> "roles[1]" -> "roles" -> "".
func parentPath(path string) string {
	if strings.HasSuffix(path, "]") {
		// An index or a quoted map key: find its opening bracket, skipping
		// brackets inside the quotes.
		if i := strings.LastIndex(path, "[\""); i >= 0 && strings.HasSuffix(path, "\"]") {
			return path[:i]
		}
		if i := strings.LastIndexByte(path, '['); i >= 0 {
			return path[:i]
		}
	}
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[:i]
	}
	return ""
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// field appends a field or map key to a path: field("roles[0]", "min") is
// "roles[0].min"; keys that are not plain words are quoted:
// field("x.processes", "t3.medium") is `x.processes["t3.medium"]`.
func field(path, key string) string {
	if !plainKey.MatchString(key) {
		return path + "[" + strconv.Quote(key) + "]"
	}
	if path == "" {
		return key
	}
	return path + "." + key
}

// index appends a sequence index to a path.
func index(path string, i int) string { return path + "[" + strconv.Itoa(i) + "]" }

// walker checks a YAML node tree against the Go type it will be decoded
// into, recording positions and structural problems.
type walker struct {
	file     string
	pos      *positions
	problems Problems
	// fatal is set by a problem that leaves the file undecodable (a value of
	// the wrong type, a key set twice); unknown fields alone are not fatal.
	fatal   bool
	nodes   int
	stopped bool
}

var (
	timeType        = reflect.TypeOf(time.Time{})
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

func (w *walker) problem(at pos, path, msg string) {
	w.fatal = true
	w.unknown(at, path, msg)
}

// unknown records a problem that does not stop decoding.
func (w *walker) unknown(at pos, path, msg string) {
	w.problems = append(w.problems, Problem{File: w.file, Line: at.line, Col: at.col, Path: path, Msg: msg})
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if w.stopped {
		return
	}
	if w.nodes++; w.nodes > maxNodes {
		w.stopped = true
		w.problem(pos{n.Line, n.Column}, path, "file too large: more than 100000 values once aliases are expanded")
		return
	}
	at := pos{n.Line, n.Column}
	if _, seen := w.pos.vals[path]; !seen {
		w.pos.vals[path] = at
	}
	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return
		}
		n = n.Alias
	}
	if isNull(n) {
		return
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == timeType || reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			msg := typeErrorMessage(err)
			if t == timeType {
				msg = fmt.Sprintf("want a timestamp like 2025-03-01T08:00:00+01:00, got %s", describe(n))
			}
			w.problem(at, path, msg)
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			w.problem(at, path, fmt.Sprintf("want a mapping of fields, got %s", describe(n)))
			return
		}
		w.mapping(n, path, func(key string) (reflect.Type, bool) {
			f, ok := yamlField(t, key)
			return f, ok
		}, func(key string) string { return suggest(key, yamlFieldNames(t)) })
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			w.problem(at, path, fmt.Sprintf("want a mapping, got %s", describe(n)))
			return
		}
		w.mapping(n, path, func(string) (reflect.Type, bool) { return t.Elem(), true }, nil)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			w.problem(at, path, fmt.Sprintf("want a list, got %s", describe(n)))
			return
		}
		for i, c := range n.Content {
			w.walk(c, t.Elem(), index(path, i))
		}
	default:
		if n.Kind != yaml.ScalarNode {
			w.problem(at, path, fmt.Sprintf("want %s, got %s", kindName(t), describe(n)))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			w.problem(at, path, fmt.Sprintf("want %s, got %s", kindName(t), describe(n)))
		}
	}
}

// mapping walks a mapping node's pairs. fieldType says what a key decodes
// into and whether it is known; hint suggests a known key for an unknown one.
func (w *walker) mapping(n *yaml.Node, path string, fieldType func(string) (reflect.Type, bool), hint func(string) string) {
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			// "<<: *defaults" merges another mapping's fields into this one.
			w.merge(v, path, fieldType, hint)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			w.problem(pos{k.Line, k.Column}, path, fmt.Sprintf("want a plain key, got %s", describe(k)))
			continue
		}
		p := field(path, k.Value)
		if line, dup := seen[k.Value]; dup {
			w.problem(pos{k.Line, k.Column}, p, fmt.Sprintf("set twice (first on line %d)", line))
			continue
		}
		seen[k.Value] = k.Line
		ft, ok := fieldType(k.Value)
		if !ok {
			msg := fmt.Sprintf("unknown field %q", k.Value)
			if s := hint(k.Value); s != "" {
				msg += fmt.Sprintf("; did you mean %q?", s)
			}
			w.unknown(pos{k.Line, k.Column}, p, msg)
			continue
		}
		if _, set := w.pos.keys[p]; !set {
			w.pos.keys[p] = pos{k.Line, k.Column}
		}
		w.walk(v, ft, p)
	}
}

func (w *walker) merge(v *yaml.Node, path string, fieldType func(string) (reflect.Type, bool), hint func(string) string) {
	if w.nodes++; w.nodes > maxNodes {
		if !w.stopped {
			w.stopped = true
			w.problem(pos{v.Line, v.Column}, path, "file too large: more than 100000 values once aliases are expanded")
		}
		return
	}
	for v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.MappingNode:
		w.mapping(v, path, fieldType, hint)
	case yaml.SequenceNode:
		for _, c := range v.Content {
			w.merge(c, path, fieldType, hint)
		}
	default:
		w.problem(pos{v.Line, v.Column}, path, "<< merges a mapping; got "+describe(v))
	}
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

// yamlField returns the type of the struct field whose yaml tag is key.
func yamlField(t reflect.Type, key string) (reflect.Type, bool) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.IsExported() && yamlName(f) == key {
			return f.Type, true
		}
	}
	return nil, false
}

func yamlFieldNames(t reflect.Type) []string {
	var names []string
	for i := 0; i < t.NumField(); i++ {
		if f := t.Field(i); f.IsExported() {
			if n := yamlName(f); n != "-" {
				names = append(names, n)
			}
		}
	}
	return names
}

func yamlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
	if name == "" {
		return strings.ToLower(f.Name)
	}
	return name
}

// suggest returns the known name closest to key, if it is close enough to
// be a typo.
func suggest(key string, known []string) string {
	best, bestD := "", 3
	sort.Strings(known)
	for _, k := range known {
		if d := editDistance(strings.ToLower(key), k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 64
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Bool:
		return "true or false"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

// describe names what a node holds, for messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.AliasNode:
		return "an alias"
	case yaml.ScalarNode:
		v := n.Value
		if len(v) > 40 {
			v = v[:40] + "..."
		}
		return strconv.Quote(v)
	}
	return "nothing"
}

// typeErrorMessage strips yaml.v3's "line N:" prefixes from an error that a
// custom unmarshaller (or the decoder) returned.
func typeErrorMessage(err error) string {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, e := range te.Errors {
			msgs[i] = lineRE.ReplaceAllString(e, "")
		}
		return strings.Join(msgs, "; ")
	}
	return lineRE.ReplaceAllString(err.Error(), "")
}
