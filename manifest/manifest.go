// Package manifest builds the Slack and Teams app manifests for tokenpay from templates
// embedded in the binary, so an operator can produce the exact manifest (or Teams app
// package) for a deployment without a checkout. Tests validate both against the vendors'
// schemas in shared/spec.
package manifest

//go:generate go run teams/gen_icons.go -dir teams
