package spectest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	cardSchema  = "adaptive-card.schema.json"
	slackSchema = "slack-manifest.schema.json"
	teamsSchema = "teams-manifest.schema.json"
)

func TestDir(t *testing.T) {
	dir := Dir(t)
	if !filepath.IsAbs(dir) {
		t.Errorf("Dir = %q, want an absolute path", dir)
	}
	if filepath.Base(dir) != "spec" || filepath.Base(filepath.Dir(dir)) != "shared" {
		t.Errorf("Dir = %q, want a path ending in shared/spec", dir)
	}
	if p := Path(t, slackSchema); p != filepath.Join(dir, slackSchema) {
		t.Errorf("Path = %q, want it inside %q", p, dir)
	}
}

func TestFindDirOutsideTree(t *testing.T) {
	t.Chdir(t.TempDir())
	if dir, err := findDir(); err == nil {
		t.Fatalf("findDir from a temp dir = %q, want an error", dir)
	}
}

// teamsManifest is the smallest document the 1.29 schema accepts, with one field replaced.
func teamsManifest(key, value string) string {
	fields := map[string]string{
		"manifestVersion": `"1.29"`,
		"version":         `"1.0.0"`,
		"id":              `"8a0e7c55-3c6f-4d8e-9b1a-2f4c6d8e0a1b"`,
		"developer":       `{"name":"d","websiteUrl":"https://example.com","privacyUrl":"https://example.com/p","termsOfUseUrl":"https://example.com/t"}`,
		"name":            `{"short":"n"}`,
		"description":     `{"short":"s","full":"f"}`,
		"icons":           `{"color":"color.png","outline":"outline.png"}`,
		"accentColor":     `"#112233"`,
	}
	if value == "" {
		delete(fields, key)
	} else {
		fields[key] = value
	}
	var parts []string
	for k, v := range fields {
		parts = append(parts, fmt.Sprintf("%q:%s", k, v))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func TestValidateErr(t *testing.T) {
	tests := []struct {
		name    string
		schema  string
		doc     string
		wantErr string // substring of the error; empty means valid
	}{
		{"minimal card", cardSchema,
			`{"$schema":"http://adaptivecards.io/schemas/adaptive-card.json","type":"AdaptiveCard","version":"1.5","body":[]}`, ""},
		{"card with text and submit", cardSchema,
			`{"type":"AdaptiveCard","version":"1.5","body":[{"type":"TextBlock","text":"hi","wrap":true}],"actions":[{"type":"Action.Submit","title":"Approve","data":{"a":"approve:1"}}]}`, ""},
		{"card with unknown element", cardSchema,
			`{"type":"AdaptiveCard","version":"1.5","body":[{"type":"Marquee","text":"hi"}]}`, "/body/0"},
		{"card with wrong top type", cardSchema,
			`{"type":"HeroCard","version":"1.5","body":[]}`, "/type"},
		{"minimal slack manifest", slackSchema,
			`{"display_information":{"name":"tokenpay"}}`, ""},
		{"slack manifest without display information", slackSchema,
			`{"features":{}}`, "display_information"},
		{"slack manifest with unknown key", slackSchema,
			`{"display_information":{"name":"tokenpay"},"settings":{"socket_mode":true}}`, "socket_mode"},
		{"slack command without slash", slackSchema,
			`{"display_information":{"name":"t"},"features":{"slash_commands":[{"command":"tokens","description":"d"}]}}`, "/features/slash_commands/0/command"},
		{"minimal teams manifest", teamsSchema, teamsManifest("", ""), ""},
		{"teams manifest with old version", teamsSchema, teamsManifest("manifestVersion", `"1.16"`), "/manifestVersion"},
		{"teams manifest with bad id", teamsSchema, teamsManifest("id", `"tokenpay"`), "/id"},
		{"teams manifest without icons", teamsSchema, teamsManifest("icons", ""), "icons"},
		{"not json", slackSchema, `{"display_information":`, "parse document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateErr(tt.schema, []byte(tt.doc))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("ValidateErr: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("ValidateErr = nil, want an error mentioning %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("ValidateErr = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}

// recorder captures Errorf so that a test can check Validate reports a failure.
type recorder struct {
	testing.TB
	errs []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, fmt.Sprintf(format, args...))
}

func TestValidate(t *testing.T) {
	good := &recorder{TB: t}
	Validate(good, slackSchema, []byte(`{"display_information":{"name":"tokenpay"}}`))
	if len(good.errs) != 0 {
		t.Errorf("Validate of a valid document reported %q", good.errs)
	}

	bad := &recorder{TB: t}
	Validate(bad, slackSchema, []byte(`{"display_information":{"name":"a name far longer than thirty-five characters"}}`))
	if len(bad.errs) != 1 || !strings.Contains(bad.errs[0], "/display_information/name") {
		t.Errorf("Validate of an invalid document reported %q, want one error locating the name", bad.errs)
	}
}

func TestSchemasCompileOnce(t *testing.T) {
	for _, name := range []string{cardSchema, slackSchema, teamsSchema, "teams-manifest-1.16.schema.json"} {
		first, err := schema(name)
		if err != nil {
			t.Fatalf("compile %s: %v", name, err)
		}
		again, err := schema(name)
		if err != nil || again != first {
			t.Errorf("second compile of %s = %p, %v; want the cached %p", name, again, err, first)
		}
	}
}

// The vendor's Adaptive Card 1.6 schema writes "required": true on two properties, which is
// draft-03 syntax and invalid under the draft-06 it declares; the library rightly refuses it.
// Cards are validated against 1.5. If this test fails, the file was fixed and 1.6 is usable.
func TestAdaptiveCard16SchemaIsInvalid(t *testing.T) {
	_, err := schema("adaptive-card-1.6.schema.json")
	if err == nil || !strings.Contains(err.Error(), "/required") {
		t.Errorf("compile adaptive-card-1.6.schema.json: %v, want the boolean required rejected", err)
	}
}

func TestNoNetwork(t *testing.T) {
	path := filepath.Join(t.TempDir(), "remote.schema.json")
	if err := os.WriteFile(path, []byte(`{"$schema":"http://json-schema.org/draft-07/schema#","$ref":"https://example.com/other.json"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	err := ValidateErr(path, []byte(`{}`))
	if err == nil || !strings.Contains(err.Error(), "refusing to load https://example.com/other.json") {
		t.Errorf("ValidateErr with a remote $ref = %v, want the loader to refuse it", err)
	}
}
