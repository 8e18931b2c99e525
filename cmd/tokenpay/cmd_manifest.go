package main

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/spf13/cobra"
	"github.com/tokenpay/tokenpay/manifest"
)

func (a *app) manifestCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "manifest", Short: "Print the Slack app manifest or write the Teams app package"}
	var baseURL string
	var socket bool
	slackCmd := &cobra.Command{
		Use:   "slack --url https://HOST",
		Short: "Print the Slack app manifest with the request URLs filled in (or --socket-mode)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := manifest.Slack(manifest.SlackOptions{BaseURL: baseURL, SocketMode: socket})
			if err != nil {
				return usageError(err.Error())
			}
			_, err = a.stdout.Write(append(out, '\n'))
			return err
		},
	}
	slackCmd.Flags().StringVar(&baseURL, "url", "", "public https base URL of tokenpay serve, e.g. https://tokenpay.example.com")
	slackCmd.Flags().BoolVar(&socket, "socket-mode", false, "Socket Mode (no public URL; set SLACK_APP_TOKEN)")

	var appID, out, privacyURL, termsURL string
	var force bool
	teamsCmd := &cobra.Command{
		Use:   "teams --app-id ID [--privacy-url URL --terms-url URL] -o tokenpay-teams.zip",
		Short: "Write the Teams app package (manifest.json and icons) to upload",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var buf bytes.Buffer
			if err := manifest.TeamsPackageWith(&buf, manifest.TeamsOptions{AppID: appID, PrivacyURL: privacyURL, TermsURL: termsURL}); err != nil {
				return usageError(err.Error())
			}
			flags := os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			if !force {
				flags |= os.O_EXCL
			}
			f, err := os.OpenFile(out, flags, 0o644)
			if errors.Is(err, fs.ErrExist) {
				return usageError(fmt.Sprintf("%s already exists: pass --force to replace it, or -o another file", out))
			}
			if err != nil {
				return fmt.Errorf("write %s: %w", out, err)
			}
			if _, err := f.Write(buf.Bytes()); err != nil {
				f.Close()
				return fmt.Errorf("write %s: %w", out, err)
			}
			if err := f.Close(); err != nil {
				return fmt.Errorf("write %s: %w", out, err)
			}
			fmt.Fprintf(a.stdout, "Wrote %s: upload it in Teams (Apps, Manage your apps, Upload an app).\n", out)
			return nil
		},
	}
	teamsCmd.Flags().StringVar(&appID, "app-id", "", "the bot's Microsoft App ID (a GUID)")
	teamsCmd.Flags().StringVarP(&out, "output", "o", "tokenpay-teams.zip", "zip file to write")
	teamsCmd.Flags().StringVar(&privacyURL, "privacy-url", "", "https URL of your privacy statement (default: the README's Privacy section)")
	teamsCmd.Flags().StringVar(&termsURL, "terms-url", "", "https URL of your terms of use (default: the README's Terms of use section)")
	teamsCmd.Flags().BoolVar(&force, "force", false, "replace the output file if it exists")
	cmd.AddCommand(slackCmd, teamsCmd)
	return cmd
}
