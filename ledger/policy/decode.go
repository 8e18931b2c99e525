package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The file is decoded by walking the YAML node tree against the Policy type,
// which rejects unknown keys as Decoder.KnownFields(true) would, but reports
// each with its path as well as its line (yaml's errors are text holding only
// a line). yaml's own Decode is also too lenient for money: it truncates 1.5
// into an int64 field.

var (
	weightType      = reflect.TypeFor[Weight]()
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
)

type decoder struct {
	problems []Problem
	// lines maps the path of every key in the file to its line, so that
	// problems found by Validate point into the file too.
	lines map[string]int
	// budget bounds the nodes visited: aliases can make a small file expand
	// to billions of nodes.
	budget int
	halted bool
}

func newDecoder() *decoder {
	return &decoder{lines: map[string]int{}}
}

func (d *decoder) addf(path string, line int, format string, args ...any) {
	d.problems = append(d.problems, Problem{Path: path, Line: line, Message: fmt.Sprintf(format, args...)})
}

// lineOf returns the line of path in the file, or of its nearest ancestor
// when the key itself was not written (it kept its default), or 0.
func (d *decoder) lineOf(path string) int {
	if line, ok := d.lines[path]; ok {
		return line
	}
	best, line := -1, 0
	for p, l := range d.lines {
		if len(p) > best && len(p) < len(path) && strings.HasPrefix(path, p) && (path[len(p)] == '.' || path[len(p)] == '[') {
			best, line = len(p), l
		}
	}
	return line
}

// decodeDocument lays the YAML document in data over p.
func (d *decoder) decodeDocument(data []byte, p *Policy) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if !errors.Is(err, io.EOF) {
			d.syntaxError(err)
		}
		return
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == nil:
		d.addf("", next.Line, "only one YAML document is allowed")
		return
	case !errors.Is(err, io.EOF):
		d.syntaxError(err)
		return
	}
	d.budget = 2*countNodes(&doc) + 1000
	d.decode(&doc, reflect.ValueOf(p).Elem(), "")
}

// yaml reports syntax errors only as text; the line is taken from it so the
// problem can point at the file like every other one.
var syntaxLine = regexp.MustCompile(`(?s)^yaml: line (\d+): (.*)$`)

func (d *decoder) syntaxError(err error) {
	msg := err.Error()
	if m := syntaxLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		d.addf("", line, "YAML syntax: %s", m[2])
		return
	}
	d.addf("", 0, "YAML syntax: %s", strings.TrimPrefix(msg, "yaml: "))
}

func countNodes(n *yaml.Node) int {
	count := 1
	for _, c := range n.Content {
		count += countNodes(c)
	}
	return count
}

// visit charges one node to the budget and reports whether decoding goes on.
func (d *decoder) visit(n *yaml.Node) bool {
	if d.halted {
		return false
	}
	d.budget--
	if d.budget < 0 {
		d.halted = true
		d.addf("", n.Line, "too many aliases: the document expands far beyond its size")
		return false
	}
	return true
}

func resolve(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describe names a node for messages: its value for a scalar, its kind otherwise.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	v := n.Value
	if r := []rune(v); len(r) > 40 {
		v = string(r[:40]) + "…"
	}
	return strconv.Quote(v)
}

// decode stores node n into v. A null value keeps what v holds: writing
// `rollover:` with nothing under it leaves the defaults in place.
func (d *decoder) decode(n *yaml.Node, v reflect.Value, path string) {
	if !d.visit(n) {
		return
	}
	n = resolve(n)
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) > 0 {
			d.decode(n.Content[0], v, path)
		}
		return
	}
	if isNull(n) {
		return
	}
	switch {
	case v.Type() == weightType:
		d.decodeWeight(n, v, path)
		return
	case reflect.PointerTo(v.Type()).Implements(unmarshalerType):
		if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
			d.addf(path, n.Line, "%s", err.Error())
		}
		return
	case v.Type() == durationType:
		dur, err := time.ParseDuration(n.Value)
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" || err != nil {
			d.addf(path, n.Line, "want a duration such as 168h or 90m, got %s", describe(n))
			return
		}
		v.SetInt(int64(dur))
		return
	}

	switch v.Kind() {
	case reflect.Struct:
		d.decodeStruct(n, v, path)
	case reflect.Slice:
		d.decodeSlice(n, v, path)
	case reflect.Map:
		d.decodeMap(n, v, path)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.addf(path, n.Line, "want a string, got %s", describe(n))
			return
		}
		v.SetString(n.Value)
	case reflect.Bool:
		d.decodeScalar(n, v, path, "true or false", "!!bool")
	case reflect.Int, reflect.Int64:
		d.decodeScalar(n, v, path, "a whole number", "!!int")
	case reflect.Float64:
		d.decodeScalar(n, v, path, "a number", "!!int", "!!float")
	default:
		// Only reachable by adding a Policy field of a new kind.
		panic(fmt.Sprintf("policy: no YAML decoding for %s at %s", v.Type(), path))
	}
}

// decodeScalar lets yaml convert a scalar whose resolved tag is one of tags;
// checking the tag first keeps 1.5 out of integer fields and "yes" out of booleans.
func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, path, want string, tags ...string) {
	if n.Kind != yaml.ScalarNode || !slices.Contains(tags, n.ShortTag()) {
		d.addf(path, n.Line, "want %s, got %s", want, describe(n))
		return
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		d.addf(path, n.Line, "want %s in range, got %s", want, describe(n))
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.addf(path, n.Line, "want a mapping, got %s", describe(n))
		return
	}
	t := v.Type()
	fields := make(map[string]int, t.NumField())
	known := make([]string, 0, t.NumField())
	for i := range t.NumField() {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		fields[name] = i
		known = append(known, name)
	}
	d.eachKey(n, func(key string) string { return fieldPath(path, key) }, func(key string, k, val *yaml.Node, p string) {
		i, ok := fields[key]
		if !ok {
			d.addf(p, k.Line, "unknown key %q (known keys: %s)", key, strings.Join(known, ", "))
			return
		}
		d.decode(val, v.Field(i), p)
	})
}

// decodeSlice replaces the default list: a list in the file is the whole list.
func (d *decoder) decodeSlice(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.SequenceNode {
		d.addf(path, n.Line, "want a list, got %s", describe(n))
		return
	}
	if len(n.Content) == 0 {
		v.SetZero() // empty is nil, so that a policy survives YAML() and Parse unchanged
		return
	}
	s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
	for i, el := range n.Content {
		p := fmt.Sprintf("%s[%d]", path, i)
		d.lines[p] = el.Line
		d.decode(el, s.Index(i), p)
	}
	v.Set(s)
}

// decodeMap replaces the default map, like decodeSlice.
func (d *decoder) decodeMap(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.addf(path, n.Line, "want a mapping, got %s", describe(n))
		return
	}
	m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	d.eachKey(n, func(key string) string { return keyPath(path, key) }, func(key string, k, val *yaml.Node, p string) {
		if isNull(resolve(val)) {
			d.addf(p, k.Line, "missing value")
			return
		}
		e := reflect.New(v.Type().Elem()).Elem()
		d.decode(val, e, p)
		m.SetMapIndex(reflect.ValueOf(key), e)
	})
	if m.Len() == 0 {
		v.SetZero()
		return
	}
	v.Set(m)
}

// decodeWeight reads {input: 2.5, output: 10}; both are required, since a
// forgotten one would make that side of the model free.
func (d *decoder) decodeWeight(n *yaml.Node, v reflect.Value, path string) {
	if n.Kind != yaml.MappingNode {
		d.addf(path, n.Line, "want a mapping such as {input: 2.5, output: 10}, got %s", describe(n))
		return
	}
	var w Weight
	var hasInput, hasOutput bool
	d.eachKey(n, func(key string) string { return fieldPath(path, key) }, func(key string, k, val *yaml.Node, p string) {
		switch key {
		case "input":
			hasInput = true
			w.InputMilli = d.milli(val, p)
		case "output":
			hasOutput = true
			w.OutputMilli = d.milli(val, p)
		case "cached_input":
			w.CachedSet = true
			w.CachedInputMilli = d.milli(val, p)
		default:
			d.addf(p, k.Line, "unknown key %q (known keys: input, output, cached_input)", key)
		}
	})
	if !hasInput {
		d.addf(fieldPath(path, "input"), n.Line, "missing: a weight sets both input and output")
	}
	if !hasOutput {
		d.addf(fieldPath(path, "output"), n.Line, "missing: a weight sets both input and output")
	}
	v.Set(reflect.ValueOf(w))
}

func (d *decoder) milli(n *yaml.Node, path string) int64 {
	if !d.visit(n) {
		return 0
	}
	n = resolve(n)
	if tag := n.ShortTag(); n.Kind != yaml.ScalarNode || (tag != "!!int" && tag != "!!float") {
		d.addf(path, n.Line, "want a decimal number such as 2.5, got %s", describe(n))
		return 0
	}
	m, err := parseMilli(n.Value)
	if err != nil {
		d.addf(path, n.Line, "%s", err.Error())
	}
	return m
}

// eachKey calls fn for every key of mapping n with the key's path, after
// reporting keys that are not plain strings, merge keys and duplicates.
func (d *decoder) eachKey(n *yaml.Node, child func(key string) string, fn func(key string, k, v *yaml.Node, path string)) {
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if !d.visit(k) {
			return
		}
		if k.Kind != yaml.ScalarNode {
			d.addf(child(""), k.Line, "want a plain key, got %s", describe(k))
			continue
		}
		p := child(k.Value)
		if k.ShortTag() == "!!merge" {
			d.addf(p, k.Line, "merge keys (<<) are not supported; repeat the keys")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.addf(p, k.Line, "duplicate key, first set at line %d", first)
			continue
		}
		seen[k.Value] = k.Line
		d.lines[p] = k.Line
		fn(k.Value, k, v, p)
	}
}

func fieldPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

var plainKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// keyPath names a map entry: models.weights.gpt-4o, or with a quoted key when
// it holds characters that would make the path ambiguous, such as
// unlock.delegates["ana@example.com"].
func keyPath(parent, key string) string {
	if plainKey.MatchString(key) {
		return fieldPath(parent, key)
	}
	return parent + "[" + strconv.Quote(key) + "]"
}
