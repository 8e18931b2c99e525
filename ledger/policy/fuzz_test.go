package policy

import (
	"bytes"
	"errors"
	"os"
	"reflect"
	"testing"
)

// FuzzParse checks that Parse never panics, rejects with *Errors only, and
// that every policy it accepts survives YAML() and Parse unchanged.
func FuzzParse(f *testing.F) {
	for _, file := range []string{"testdata/valid.yaml", "testdata/invalid.yaml"} {
		src, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(src)
	}
	f.Add([]byte(""))
	f.Add([]byte("period: weekly\norg: {time_zone: America/New_York}\n"))
	f.Add([]byte("models:\n  weights:\n    \"gpt-4.1\": {input: 0.001, output: 1000000}\n"))
	f.Add([]byte("unlock:\n  delegates:\n    a@b.c: &d [x@y.z]\n    c@d.e: *d\n"))

	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(bytes.NewReader(data))
		if err != nil {
			var perr *Errors
			if !errors.As(err, &perr) || len(perr.Problems) == 0 {
				t.Fatalf("Parse error is not a non-empty *Errors: %v", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted policy fails Validate: %v", err)
		}
		out, err := p.YAML()
		if err != nil {
			t.Fatalf("YAML: %v", err)
		}
		back, err := Parse(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("Parse(YAML()): %v\n%s", err, out)
		}
		if !reflect.DeepEqual(back, p) {
			t.Fatalf("round trip changed the policy:\n got %+v\nwant %+v\nYAML:\n%s", back, p, out)
		}
	})
}
