#!/usr/bin/env bash
# Mixed load on a local tokenpay serve: usage ingestion, signed slash commands and the
# weekly-digest fan-out together, over 100,000 people, for 10 minutes. Loopback only.
#
#   bench/load/run.sh                      # the figures in BENCHMARKS.md
#   PEOPLE=10000 DURATION=1m bench/load/run.sh
#
# Run it on a quiet machine (check uptime); it takes both cores. The work directory (the
# ledger, serve's log, the report) is kept and printed at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."

PEOPLE=${PEOPLE:-100000}
DURATION=${DURATION:-10m}
USAGE_RATE=${USAGE_RATE:-10}          # batches of 500 per second: 5,000 events/s
USAGE_WORKERS=${USAGE_WORKERS:-2}      # with USAGE_RATE=0: closed loops, the capacity
COMMAND_RATE=${COMMAND_RATE:-50}
SERVE_ADDR=127.0.0.1:${SERVE_PORT:-18080}
SLACK_ADDR=127.0.0.1:${SLACK_PORT:-18081}
WORK=${WORK:-$(mktemp -d /tmp/tokenpay-load.XXXXXX)}
SECRET=load-signing-secret
# The business clock: the last Monday of November 2026. Events occur earlier that day; the
# digests are the weekly ones of the four weeks before.
export TOKENPAY_NOW=2026-11-30T12:00:00Z
export TOKENPAY_DB=$WORK/ledger.db TOKENPAY_POLICY=$WORK/policy.yaml
export CGO_ENABLED=1

echo "work directory: $WORK"
go build -o "$WORK/tokenpay" ./cmd/tokenpay
go build -o "$WORK/load" ./bench/load
cat >"$TOKENPAY_POLICY" <<'POLICY'
nudges:
  quiet_hours: {start: "00:00", end: "00:00"}   # none: every digest may go at once
outbox:
  slack_per_workspace_per_minute: 600000       # the fake Slack has no rate limit to honour
  slack_per_channel_per_second: 10
POLICY

"$WORK/load" people -n "$PEOPLE" -o "$WORK/people.csv"
/usr/bin/time -f "people import: %e s, %M KiB max RSS" "$WORK/tokenpay" people import "$WORK/people.csv"
"$WORK/tokenpay" apikey create load | tail -n 1 >"$WORK/key"

# The load tool serves the fake Slack that serve and the digest jobs post to.
"$WORK/load" run -target "http://$SERVE_ADDR" -slack "$SLACK_ADDR" -key-file "$WORK/key" -secret "$SECRET" \
  -pidfile "$WORK/serve.pid" -db "$TOKENPAY_DB" -people "$PEOPLE" -duration "$DURATION" \
  -usage-rate "$USAGE_RATE" -usage-workers "$USAGE_WORKERS" -command-rate "$COMMAND_RATE" -occurred-at 2026-11-30T10:00:00Z \
  -json "$WORK/report.json" &
load=$!

SLACK_BOT_TOKEN=xoxb-load SLACK_SIGNING_SECRET=$SECRET SLACK_API_URL="http://$SLACK_ADDR/api/" \
  "$WORK/tokenpay" serve --addr "$SERVE_ADDR" 2>"$WORK/serve.log" &
serve=$!
echo "$serve" >"$WORK/serve.pid"

# Digest fan-out during the load: one weekly digest to everyone, then the next week's,
# until the load ends. `jobs run` queues them in the outbox and delivers them; serve's
# outbox worker delivers alongside it.
case $DURATION in
  *m) load_seconds=$((${DURATION%m} * 60)) ;;
  *s) load_seconds=${DURATION%s} ;;
  *) echo "DURATION must be minutes (10m) or seconds (90s)" >&2; exit 2 ;;
esac
# A digest starts only while the load runs, at least 20 s before it ends.
last_start=$(($(date +%s) + load_seconds - 20))
(
  sleep 30
  for week in 2026-11-02 2026-11-09 2026-11-16 2026-11-23; do
    [ "$(date +%s)" -lt "$last_start" ] || break
    if SLACK_BOT_TOKEN=xoxb-load SLACK_API_URL="http://$SLACK_ADDR/api/" \
      "$WORK/tokenpay" jobs run weekly-digest --at "${week}T09:05:00Z" >>"$WORK/jobs.log" 2>&1; then
      date -u +"%T digest for $week done" >>"$WORK/jobs.log"
    else
      date -u +"%T digest for $week FAILED" >>"$WORK/jobs.log"
    fi
  done
) &
jobs_pid=$!

status=0
wait "$load" || status=$?
kill "$jobs_pid" 2>/dev/null || true
kill -TERM "$serve"
wait "$serve" || { echo "serve exited with $?"; status=1; }
grep -E 'digest for|Ran weekly-digest|Outbox:|tokenpay:' "$WORK/jobs.log" || true
if grep -q FAILED "$WORK/jobs.log"; then status=1; fi
/usr/bin/time -f "ledger verify: %e s" "$WORK/tokenpay" ledger verify || status=1
ls -l "$WORK/ledger.db"
echo "work directory: $WORK (report.json, serve.log, jobs.log)"
exit "$status"
