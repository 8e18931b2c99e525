package manifest_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"iter"
	"slices"
	"strings"
	"testing"

	"github.com/tokenpay/tokenpay/manifest"
	"github.com/tokenpay/tokenpay/manifest/spectest"
)

const (
	teamsSchema = "teams-manifest.schema.json"
	appID       = "8a0e7c55-3c6f-4d8e-9b1a-2f4c6d8e0a1b"
)

var teamsCommands = []string{"balance", "history", "request", "impact", "prompts", "share", "learn", "nudges", "team", "help"}

type teamsDoc struct {
	Schema          string `json:"$schema"`
	ManifestVersion string `json:"manifestVersion"`
	Version         string `json:"version"`
	ID              string `json:"id"`
	Developer       struct {
		Name, WebsiteURL, PrivacyURL, TermsOfUseURL string
	} `json:"developer"`
	Name struct {
		Short string `json:"short"`
	} `json:"name"`
	Description struct {
		Short, Full string
	} `json:"description"`
	Icons struct {
		Color, Outline string
	} `json:"icons"`
	AccentColor string `json:"accentColor"`
	Bots        []struct {
		BotID         string   `json:"botId"`
		Scopes        []string `json:"scopes"`
		SupportsFiles *bool    `json:"supportsFiles"`
		CommandLists  []struct {
			Scopes   []string `json:"scopes"`
			Commands []struct {
				Title, Description string
			} `json:"commands"`
		} `json:"commandLists"`
	} `json:"bots"`
	ValidDomains []string `json:"validDomains"`
}

func TestTeamsManifest(t *testing.T) {
	out, err := manifest.TeamsManifest(appID)
	if err != nil {
		t.Fatalf("TeamsManifest: %v", err)
	}
	spectest.Validate(t, teamsSchema, out)

	var doc teamsDoc
	if err := json.Unmarshal(out, &doc); err != nil {
		t.Fatalf("decode manifest: %v", err)
	}
	if strings.Contains(string(out), "${{") {
		t.Error("manifest still has a template placeholder")
	}
	if doc.ManifestVersion != "1.29" || doc.Schema != "https://developer.microsoft.com/json-schemas/teams/v1.29/MicrosoftTeams.schema.json" {
		t.Errorf("manifestVersion %q with $schema %q, want 1.29 and its schema URL", doc.ManifestVersion, doc.Schema)
	}
	if doc.Version != "1.0.0" {
		t.Errorf("version = %q, want 1.0.0", doc.Version)
	}
	if doc.ID != appID {
		t.Errorf("id = %q, want %q", doc.ID, appID)
	}
	if doc.Name.Short != "tokenpay" {
		t.Errorf("name.short = %q, want tokenpay", doc.Name.Short)
	}
	checkFraming(t, doc.Description.Short+" "+doc.Description.Full)
	for name, u := range map[string]string{"websiteUrl": doc.Developer.WebsiteURL, "privacyUrl": doc.Developer.PrivacyURL, "termsOfUseUrl": doc.Developer.TermsOfUseURL} {
		if !strings.HasPrefix(u, "https://") {
			t.Errorf("developer.%s = %q, want an https URL", name, u)
		}
	}
	if doc.Icons.Color != "color.png" || doc.Icons.Outline != "outline.png" {
		t.Errorf("icons = %+v, want the files TeamsPackage writes", doc.Icons)
	}
	if doc.AccentColor == "" {
		t.Error("no accentColor")
	}
	for _, d := range doc.ValidDomains {
		if d != "token.botframework.com" {
			t.Errorf("validDomains has %q: the bot loads nothing from other domains", d)
		}
	}

	if len(doc.Bots) != 1 {
		t.Fatalf("bots = %d, want 1", len(doc.Bots))
	}
	bot := doc.Bots[0]
	if bot.BotID != appID {
		t.Errorf("botId = %q, want %q", bot.BotID, appID)
	}
	for _, scope := range []string{"personal", "team", "groupChat"} {
		if !slices.Contains(bot.Scopes, scope) {
			t.Errorf("bot scopes %v lack %s", bot.Scopes, scope)
		}
	}
	if bot.SupportsFiles == nil || *bot.SupportsFiles {
		t.Errorf("supportsFiles = %s, want an explicit false", show(bot.SupportsFiles))
	}

	listed := map[string]bool{}
	for _, list := range bot.CommandLists {
		var titles []string
		for _, c := range list.Commands {
			titles = append(titles, c.Title)
			if c.Description == "" {
				t.Errorf("command %s in %v has no description", c.Title, list.Scopes)
			}
		}
		// The schema allows 12, but Teams documents at most 10 commands per list.
		if !slices.Equal(titles, teamsCommands) {
			t.Errorf("commands for %v = %v, want %v", list.Scopes, titles, teamsCommands)
		}
		for _, s := range list.Scopes {
			listed[s] = true
		}
	}
	for _, scope := range []string{"personal", "team"} {
		if !listed[scope] {
			t.Errorf("no command list for scope %s", scope)
		}
	}
}

func TestTeamsManifestRejectsBadAppID(t *testing.T) {
	for _, id := range []string{
		"",
		"tokenpay",
		"8a0e7c55-3c6f-4d8e-9b1a",
		"{8a0e7c55-3c6f-4d8e-9b1a-2f4c6d8e0a1b}",
		"8a0e7c553c6f4d8e9b1a2f4c6d8e0a1b",
		"8a0e7c55-3c6f-4d8e-9b1a-2f4c6d8e0a1g",
		` 8a0e7c55-3c6f-4d8e-9b1a-2f4c6d8e0a1b`,
		`8a0e7c55-3c6f-4d8e-9b1a-2f4c6d8e0a1b","x":"`,
	} {
		if out, err := manifest.TeamsManifest(id); err == nil {
			t.Errorf("TeamsManifest(%q) = %s, want an error", id, out)
		} else if !strings.Contains(err.Error(), "GUID") {
			t.Errorf("TeamsManifest(%q) error %q does not say a GUID is expected", id, err)
		}
		var buf bytes.Buffer
		if err := manifest.TeamsPackage(&buf, id); err == nil || buf.Len() != 0 {
			t.Errorf("TeamsPackage(%q) = %v after writing %d bytes, want an error and nothing written", id, err, buf.Len())
		}
	}
}

func TestTeamsPackage(t *testing.T) {
	var buf bytes.Buffer
	if err := manifest.TeamsPackage(&buf, appID); err != nil {
		t.Fatalf("TeamsPackage: %v", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatalf("open package: %v", err)
	}
	files := map[string][]byte{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatalf("open %s: %v", f.Name, err)
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatalf("read %s: %v", f.Name, err)
		}
		files[f.Name] = data
	}
	var names []string
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	if want := []string{"color.png", "manifest.json", "outline.png"}; !slices.Equal(names, want) {
		t.Fatalf("package holds %v, want exactly %v at the root", names, want)
	}

	want, err := manifest.TeamsManifest(appID)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(files["manifest.json"], want) {
		t.Error("manifest.json in the package differs from TeamsManifest")
	}

	colorIcon := decodePNG(t, "color.png", files["color.png"], 192)
	checkPixels(t, "color.png", colorIcon, func(c color.NRGBA) bool { return c.A == 0xFF }, "opaque")

	outline := decodePNG(t, "outline.png", files["outline.png"], 32)
	white := func(c color.NRGBA) bool { return c.R == 0xFF && c.G == 0xFF && c.B == 0xFF }
	checkPixels(t, "outline.png", outline, func(c color.NRGBA) bool { return c.A == 0 || white(c) }, "white or transparent")
	// A blank or solid outline would pass the rule above; the mark needs both.
	var solid, clear bool
	for c := range pixels(outline) {
		solid = solid || c.A == 0xFF
		clear = clear || c.A == 0
	}
	if !solid || !clear {
		t.Errorf("outline.png: solid white pixels %v, transparent pixels %v; want both", solid, clear)
	}
}

func decodePNG(t *testing.T, name string, data []byte, size int) image.Image {
	t.Helper()
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
	if b := img.Bounds(); b.Dx() != size || b.Dy() != size {
		t.Fatalf("%s is %dx%d, want %dx%d", name, b.Dx(), b.Dy(), size, size)
	}
	return img
}

func pixels(img image.Image) iter.Seq[color.NRGBA] {
	return func(yield func(color.NRGBA) bool) {
		b := img.Bounds()
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				if !yield(color.NRGBAModel.Convert(img.At(x, y)).(color.NRGBA)) {
					return
				}
			}
		}
	}
}

func checkPixels(t *testing.T, name string, img image.Image, ok func(color.NRGBA) bool, want string) {
	t.Helper()
	bad := 0
	for c := range pixels(img) {
		if !ok(c) {
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d pixels are not %s", name, bad, want)
	}
}

// TestTeamsManifestPages: the operator's privacy and terms pages go into the manifest,
// which still validates; anything but an https URL is refused.
func TestTeamsManifestPages(t *testing.T) {
	opts := manifest.TeamsOptions{AppID: appID, PrivacyURL: "https://intranet.example.com/ai/privacy?lang=en&v=\"2\"", TermsURL: "https://intranet.example.com/ai/terms"}
	raw, err := manifest.TeamsManifestWith(opts)
	if err != nil {
		t.Fatal(err)
	}
	spectest.Validate(t, teamsSchema, raw)
	var doc teamsDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Developer.PrivacyURL != opts.PrivacyURL || doc.Developer.TermsOfUseURL != opts.TermsURL {
		t.Errorf("pages %q %q, want %q %q", doc.Developer.PrivacyURL, doc.Developer.TermsOfUseURL, opts.PrivacyURL, opts.TermsURL)
	}
	raw, _ = manifest.TeamsManifest(appID)
	json.Unmarshal(raw, &doc)
	if doc.Developer.PrivacyURL != manifest.DefaultPrivacyURL || doc.Developer.TermsOfUseURL != manifest.DefaultTermsURL {
		t.Errorf("default pages %q %q", doc.Developer.PrivacyURL, doc.Developer.TermsOfUseURL)
	}
	for _, bad := range []string{"http://intranet.example.com/privacy", "javascript:alert(1)", "intranet/privacy", "https://", "https://u:p@x.example/p", "https://x.example/" + strings.Repeat("a", 2048)} {
		if _, err := manifest.TeamsManifestWith(manifest.TeamsOptions{AppID: appID, PrivacyURL: bad}); err == nil || !strings.Contains(err.Error(), "privacy url") {
			t.Errorf("privacy url %q: %v, want a refusal naming the flag", bad, err)
		}
		if _, err := manifest.TeamsManifestWith(manifest.TeamsOptions{AppID: appID, TermsURL: bad}); err == nil || !strings.Contains(err.Error(), "terms url") {
			t.Errorf("terms url %q: %v, want a refusal naming the flag", bad, err)
		}
	}
}
