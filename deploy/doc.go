// Package deploy holds what runs tokenpay in production: a Dockerfile (multi-stage, cgo,
// non-root, the database on a volume, a health check) and systemd units for the service
// and its nightly backup. The package has no code; its test checks those files.
package deploy
