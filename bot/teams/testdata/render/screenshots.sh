#!/usr/bin/env bash
# Writes a PNG of every card the Teams bot sends, drawn by the official Adaptive Cards
# renderer in headless Chromium, for review. The PNGs are not committed.
# Usage: bot/teams/testdata/render/screenshots.sh [DIR]   (default: a new temp dir)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
out="${1:-$(mktemp -d -t tokenpay-cards.XXXXXX)}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
if [ ! -d "$here/node_modules/adaptivecards" ]; then
  npm ci --prefix "$here" --no-audit --no-fund
fi
cd "$root"
TOKENPAY_CARD_SCREENSHOTS="$out" go test ./bot/teams -run '^TestCardsInBrowser$' -count=1
echo "Screenshots in $out:"
ls "$out"
