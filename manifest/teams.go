package manifest

import (
	"archive/zip"
	"bytes"
	"cmp"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
)

var (
	//go:embed teams/manifest.json
	teamsTemplate []byte
	//go:embed teams/color.png
	teamsColorIcon []byte
	//go:embed teams/outline.png
	teamsOutlineIcon []byte
)

// teamsAppIDPlaceholder marks the app id and the bot id in the template, in the style of
// Teams Toolkit, so that the template can never be uploaded by mistake as it is.
const teamsAppIDPlaceholder = "${{TEAMS_APP_ID}}"

// guid is the Teams schema's own pattern for ids.
var guid = regexp.MustCompile(`^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$`)

// Where the app's privacy and terms pages are when the operator names none: the README's
// sections of those names (manifest's tests check that they exist).
const (
	DefaultPrivacyURL = "https://github.com/tokenpay/tokenpay#privacy"
	DefaultTermsURL   = "https://github.com/tokenpay/tokenpay#terms-of-use"
)

// TeamsOptions fills in the Teams manifest.
type TeamsOptions struct {
	// AppID is the Microsoft App ID that TEAMS_APP_ID holds (a GUID); it serves as both
	// the app id and the bot id.
	AppID string
	// PrivacyURL and TermsURL are the organisation's privacy statement and terms of use,
	// https URLs; empty means the README's sections (DefaultPrivacyURL, DefaultTermsURL).
	PrivacyURL, TermsURL string
}

// TeamsManifest returns the Teams app manifest (manifest.json) for the bot registered under
// appID, with the default privacy and terms pages.
func TeamsManifest(appID string) ([]byte, error) {
	return TeamsManifestWith(TeamsOptions{AppID: appID})
}

// TeamsManifestWith returns the Teams app manifest (manifest.json) for opts. Errors say
// which option is wrong and what it must look like.
func TeamsManifestWith(opts TeamsOptions) ([]byte, error) {
	// Checking the id first also makes the plain text replacement safe: a GUID cannot
	// break out of a JSON string.
	if !guid.MatchString(opts.AppID) {
		return nil, fmt.Errorf("teams manifest: app id %q is not a GUID: pass the Microsoft App ID of the bot registration (TEAMS_APP_ID), such as 8a0e7c55-3c6f-4d8e-9b1a-2f4c6d8e0a1b", opts.AppID)
	}
	privacy, terms := cmp.Or(opts.PrivacyURL, DefaultPrivacyURL), cmp.Or(opts.TermsURL, DefaultTermsURL)
	for _, u := range []struct{ flag, value string }{{"privacy url", privacy}, {"terms url", terms}} {
		if err := checkPageURL(u.value); err != nil {
			return nil, fmt.Errorf("teams manifest: %s %q %w", u.flag, u.value, err)
		}
	}
	out := bytes.ReplaceAll(teamsTemplate, []byte(teamsAppIDPlaceholder), []byte(opts.AppID))
	out = bytes.ReplaceAll(out, []byte(privacyPlaceholder), jsonString(privacy))
	return bytes.ReplaceAll(out, []byte(termsPlaceholder), jsonString(terms)), nil
}

const (
	privacyPlaceholder = "${{PRIVACY_URL}}"
	termsPlaceholder   = "${{TERMS_URL}}"
)

// checkPageURL accepts an absolute https URL of at most 2048 characters, the limit of
// Teams' manifest schema for these fields.
func checkPageURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case err != nil:
		return errors.New("is not a URL")
	case u.Scheme != "https" || u.Host == "" || u.User != nil:
		return errors.New("must be an https URL, such as https://intranet.example.com/tokenpay/privacy")
	case len(s) > 2048:
		return errors.New("is longer than 2048 characters")
	}
	return nil
}

// jsonString is s encoded as the inside of a JSON string (no quotes).
func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b[1 : len(b)-1]
}

// TeamsPackage writes the Teams app package to w: a zip holding manifest.json, color.png and
// outline.png at its root, ready to upload in Teams or the Teams admin center.
func TeamsPackage(w io.Writer, appID string) error {
	return TeamsPackageWith(w, TeamsOptions{AppID: appID})
}

// TeamsPackageWith is TeamsPackage for opts.
func TeamsPackageWith(w io.Writer, opts TeamsOptions) error {
	manifest, err := TeamsManifestWith(opts)
	if err != nil {
		return err
	}
	zw := zip.NewWriter(w)
	files := []struct {
		name string
		data []byte
	}{
		{"manifest.json", manifest},
		{"color.png", teamsColorIcon},
		{"outline.png", teamsOutlineIcon},
	}
	for _, f := range files {
		fw, err := zw.Create(f.name)
		if err != nil {
			return fmt.Errorf("teams package: add %s: %w", f.name, err)
		}
		if _, err := fw.Write(f.data); err != nil {
			return fmt.Errorf("teams package: write %s: %w", f.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("teams package: finish zip: %w", err)
	}
	return nil
}
