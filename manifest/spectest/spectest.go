// Package spectest lets tests find the vendor specifications in shared/spec and validate
// documents against its JSON Schemas without touching the network.
//
// shared/ lives beside the repository (in the working tree here, beside the clone in CI),
// so it is found by walking up from the test's working directory.
package spectest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
)

// Dir returns the absolute path of the shared/spec directory, failing the test if there is none.
func Dir(t testing.TB) string {
	t.Helper()
	dir, err := findDir()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// Path returns the absolute path of the named file in shared/spec, failing the test if the
// file does not exist.
func Path(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(Dir(t), filepath.FromSlash(name))
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("spec file: %v", err)
	}
	return p
}

// Validate reports a test error with the validation detail if doc does not conform to the
// schema in schemaFile (a name inside shared/spec, or an absolute path). A schema that cannot be found or compiled
// stops the test: that is a broken set-up, not a finding about doc.
func Validate(t testing.TB, schemaFile string, doc []byte) {
	t.Helper()
	sch, err := schema(schemaFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(sch, doc); err != nil {
		t.Errorf("%s: %v", schemaFile, err)
	}
}

// ValidateErr is Validate for callers without a testing.TB, such as table tests that expect
// failures. It returns nil if doc is valid.
func ValidateErr(schemaFile string, doc []byte) error {
	sch, err := schema(schemaFile)
	if err != nil {
		return err
	}
	return validate(sch, doc)
}

func findDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("find shared/spec: %w", err)
	}
	for dir := wd; ; {
		candidate := filepath.Join(dir, "shared", "spec")
		if fi, err := os.Stat(candidate); err == nil && fi.IsDir() {
			return candidate, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("find shared/spec: no directory shared/spec in %s or any parent", wd)
		}
		dir = parent
	}
}

func validate(sch *jsonschema.Schema, doc []byte) error {
	// jsonschema.UnmarshalJSON keeps numbers as json.Number, so integer keywords see the
	// literal the document holds rather than a float64 approximation.
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("parse document: %w", err)
	}
	if err := sch.Validate(inst); err != nil {
		var verr *jsonschema.ValidationError
		if errors.As(err, &verr) {
			return detailedError{verr}
		}
		return fmt.Errorf("validate document: %w", err)
	}
	return nil
}

// detailedError prints every failing keyword with its location (the library's Go-syntax
// form); the library's own Error only says that something failed.
type detailedError struct{ err *jsonschema.ValidationError }

func (e detailedError) Error() string { return fmt.Sprintf("%#v", e.err) }
func (e detailedError) Unwrap() error { return e.err }

type compiled struct {
	once sync.Once
	sch  *jsonschema.Schema
	err  error
}

// schemas caches compiled schemas by absolute path, so that a test binary compiles each
// schema (the Teams one is 127 kB) once however many tests validate against it.
var schemas sync.Map // string -> *compiled

func schema(schemaFile string) (*jsonschema.Schema, error) {
	path := schemaFile
	if !filepath.IsAbs(path) {
		dir, err := findDir()
		if err != nil {
			return nil, err
		}
		path = filepath.Join(dir, filepath.FromSlash(schemaFile))
	}
	v, _ := schemas.LoadOrStore(path, &compiled{})
	c := v.(*compiled)
	c.once.Do(func() { c.sch, c.err = compile(path) })
	return c.sch, c.err
}

func compile(path string) (*jsonschema.Schema, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read schema: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("parse schema %s: %w", path, err)
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("parse schema %s: top level is not an object", path)
	}

	// Register the schema under the identifier it declares so that references resolve the
	// way its authors meant. Each file gets its own compiler because two versions of one
	// schema (Adaptive Cards 1.5 and 1.6) declare the same identifier.
	loc := declaredID(obj)
	if loc == "" {
		loc = path
	}
	c := jsonschema.NewCompiler()
	// The library resolves json-schema.org draft meta-schemas (http or https, with or without
	// "#") to copies built into it; anything else would be a fetch, which tests never make.
	c.UseLoader(offlineLoader{})
	c.UseRegexpEngine(compileRegexp)
	if meta, _ := obj["$schema"].(string); strings.Contains(meta, "json-schema.org/draft-04/") {
		c.RegisterVocabulary(draft04ConstVocab())
	}
	if err := c.AddResource(loc, doc); err != nil {
		return nil, fmt.Errorf("register schema %s as %s: %w", path, loc, err)
	}
	sch, err := c.Compile(loc)
	if err != nil {
		return nil, fmt.Errorf("compile schema %s: %w", path, err)
	}
	return sch, nil
}

// declaredID returns the schema's own identifier: "$id" from draft-06 on, "id" before. The
// Adaptive Card schema says draft-06 but still uses "id", so both are accepted.
func declaredID(obj map[string]any) string {
	for _, key := range []string{"$id", "id"} {
		if id, ok := obj[key].(string); ok && id != "" {
			id, _, _ = strings.Cut(id, "#")
			return id
		}
	}
	return ""
}

type offlineLoader struct{}

func (offlineLoader) Load(url string) (any, error) {
	return nil, fmt.Errorf("refusing to load %s: spec schemas must resolve without the network", url)
}

// draft04ConstVocab adds "const" to draft-04 schemas. The keyword only arrived in draft-06,
// so a draft-04 validator ignores it, yet the Teams manifest schema (draft-04) pins
// manifestVersion with it: without this, a 1.16 manifest would pass the 1.29 schema.
func draft04ConstVocab() *jsonschema.Vocabulary {
	return &jsonschema.Vocabulary{
		URL: "urn:tokenpay:spectest:draft-04-const",
		Compile: func(_ *jsonschema.CompilerContext, obj map[string]any) (jsonschema.SchemaExt, error) {
			want, ok := obj["const"]
			if !ok {
				return nil, nil
			}
			return constExt{want: want}, nil
		},
	}
}

type constExt struct{ want any }

func (e constExt) Validate(ctx *jsonschema.ValidatorContext, v any) {
	equal, err := ctx.Equals(v, e.want)
	if err != nil {
		ctx.AddErr(err)
		return
	}
	if !equal {
		ctx.AddError(&kind.Const{Got: v, Want: e.want})
	}
}

// compileRegexp compiles patterns with Go's regexp. The Teams schema has one ECMAScript
// pattern Go cannot compile (a lookahead, on Office add-in XLL file names), and the library
// rejects the whole schema over it. Such a pattern compiles to a matcher that never matches:
// a document that reaches it fails loudly instead of passing unchecked.
func compileRegexp(pattern string) (jsonschema.Regexp, error) {
	re, err := regexp.Compile(pattern)
	if err != nil {
		return unsupportedRegexp{pattern: pattern, err: err}, nil
	}
	return re, nil
}

type unsupportedRegexp struct {
	pattern string
	err     error
}

func (unsupportedRegexp) MatchString(string) bool { return false }

func (u unsupportedRegexp) String() string {
	return fmt.Sprintf("%s (not checkable with Go regexp: %v)", u.pattern, u.err)
}
