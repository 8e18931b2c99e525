#!/usr/bin/env bash
# Writes a screenshot of each dashboard page (and of a sign-in link's page, whose button
# the browser test presses to sign in), on the demo database, into DIR (default
# ./screenshots, gitignored) for review. Needs what .ci/run installs: chromium and axe-core.
set -euo pipefail
cd "$(dirname "$0")/../.."
out="$(realpath -m "${1:-screenshots}")"
mkdir -p "$out"
TOKENPAY_SCREENSHOTS="$out" go test -count=1 -run '^TestDashboardInBrowser$' ./cmd/tokenpay
ls -1 "$out"
