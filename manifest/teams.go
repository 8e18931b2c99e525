package manifest

import (
	"archive/zip"
	"bytes"
	_ "embed"
	"fmt"
	"io"
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

// TeamsManifest returns the Teams app manifest (manifest.json) for the bot registered under
// appID, the Microsoft App ID that TEAMS_APP_ID holds; it serves as both the app id and the
// bot id.
func TeamsManifest(appID string) ([]byte, error) {
	// Checking the id first also makes the plain text replacement safe: a GUID cannot
	// break out of a JSON string.
	if !guid.MatchString(appID) {
		return nil, fmt.Errorf("teams manifest: app id %q is not a GUID: pass the Microsoft App ID of the bot registration (TEAMS_APP_ID), such as 8a0e7c55-3c6f-4d8e-9b1a-2f4c6d8e0a1b", appID)
	}
	return bytes.ReplaceAll(teamsTemplate, []byte(teamsAppIDPlaceholder), []byte(appID)), nil
}

// TeamsPackage writes the Teams app package to w: a zip holding manifest.json, color.png and
// outline.png at its root, ready to upload in Teams or the Teams admin center.
func TeamsPackage(w io.Writer, appID string) error {
	manifest, err := TeamsManifest(appID)
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
