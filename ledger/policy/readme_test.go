package policy

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// structKeys lists the yaml key path of every field of t ("org.time_zone",
// "baseline.rules[].team"), descending into structs and slices of structs. Types with their
// own file syntax stop the walk: a Weight is written {input, output}, a Duration as "168h",
// a map's keys are the organisation's own (model names, manager emails).
func structKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		path := name
		if prefix != "" {
			path = prefix + "." + name
		}
		out = append(out, path)
		ft := f.Type
		switch {
		case ft == weightType:
			out = append(out, path+".input", path+".output")
		case ft == durationType || reflect.PointerTo(ft).Implements(unmarshalerType):
		case ft.Kind() == reflect.Struct:
			out = append(out, structKeys(ft, path)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			out = append(out, structKeys(ft.Elem(), path+"[]")...)
		}
	}
	return out
}

// fileKeys lists the key path of every key written in a YAML document, in the same form.
func fileKeys(n *yaml.Node, prefix string, into map[string]bool) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			fileKeys(c, prefix, into)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			path := n.Content[i].Value
			if prefix != "" {
				path = prefix + "." + path
			}
			into[path] = true
			fileKeys(n.Content[i+1], path, into)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			fileKeys(c, prefix+"[]", into)
		}
	}
}

// connectorMapKey matches the example ids in the connectors' identity maps.
var connectorMapKey = regexp.MustCompile(`^connectors\.[a-z]+\.(users|api_keys)\.`)

// TestValidYAMLDocumentsEveryKey keeps testdata/valid.yaml, the reference the README
// shows, complete: a new Policy field without an example and its explanation there fails.
func TestValidYAMLDocumentsEveryKey(t *testing.T) {
	src, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		t.Fatal(err)
	}
	written := map[string]bool{}
	fileKeys(&doc, "", written)
	keys := structKeys(reflect.TypeFor[Policy](), "")
	if len(keys) < 50 {
		t.Fatalf("only %d keys found in Policy; the walk is broken: %v", len(keys), keys)
	}
	for _, k := range keys {
		if !written[k] {
			t.Errorf("testdata/valid.yaml does not show %s; add it with a comment saying what it does and its default", k)
		}
	}
	// Keys of the file's free-form maps are examples, not fields: the rest must be fields.
	for k := range written {
		if !slices.Contains(keys, k) && !strings.HasPrefix(k, "models.weights.") && !strings.HasPrefix(k, "unlock.delegates.") &&
			!connectorMapKey.MatchString(k) {
			t.Errorf("testdata/valid.yaml has %s, which is no Policy field", k)
		}
	}
}

// TestReadmeShowsThePolicyReference checks that the README carries testdata/valid.yaml
// word for word, so the operator's documentation of every key is the tested file.
func TestReadmeShowsThePolicyReference(t *testing.T) {
	src, err := os.ReadFile("testdata/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```yaml\n"+string(src)+"```\n") {
		t.Error("README.md does not show ledger/policy/testdata/valid.yaml verbatim in a ```yaml block; copy the file into the README's policy section")
	}
}
