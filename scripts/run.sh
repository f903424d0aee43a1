#!/usr/bin/env bash
# `make run`: the functions on this machine against the local stack.
#   1. bootstrap (install what is missing)
#   2. stack up (services started here are recorded in .local/run/started)
#   3. provision the DynamoDB table and SNS topic in moto
#   4. build the functions (first time: minutes)
#   5. cargo lambda watch on 127.0.0.1:$LAMBDA_PORT (default 9000), with the
#      stack env (INCIDENTS_TOPIC_ARN included), HEALTH_TOKEN, METRICS_TOKEN,
#      ADMIN_TOKEN and REDACTION_KEY from .local/run/ and RUST_LOG=info
#   6. a local receiver on 127.0.0.1:$RECEIVER_PORT (default 9100) standing
#      in for Slack, a signed webhook and PagerDuty (scripts/receiver.py)
#   7. invoke component-probe once, then every $PROBE_EVERY seconds (60), and
#      alert-evaluator every $EVALUATE_EVERY seconds (60)
#   8. the demo (scripts/demo.py): the bundled sample traffic through
#      log-metrics, the incidents it raised (read from the SQS queue on the
#      topic), their delivery by incident-notifier to the receiver, the
#      security responder's dry-run record
#   9. print the health answer and the URLs, follow the function logs until
#      Ctrl-C, then stop everything started here (same as `make stop`)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

LAMBDA_PORT="${LAMBDA_PORT:-9000}"
RECEIVER_PORT="${RECEIVER_PORT:-9100}"
PROBE_EVERY="${PROBE_EVERY:-60}"
EVALUATE_EVERY="${EVALUATE_EVERY:-60}"
BUILD_WAIT="${RUN_WAIT_SECONDS:-900}"
PIDS_FILE="$RUN_DIR/pids"
STARTED_FILE="$RUN_DIR/started"
TOKEN_FILE="$RUN_DIR/health-token"
REDACTION_KEY_FILE="$RUN_DIR/redaction-key"
METRICS_TOKEN_FILE="$RUN_DIR/metrics-token"
ADMIN_TOKEN_FILE="$RUN_DIR/admin-token"
SIGNING_KEY_FILE="$RUN_DIR/webhook-signing-key"
RECEIVER_LOG="$RUN_DIR/receiver.jsonl"
DEMO_DIR="$RUN_DIR/demo"
DEMO_SAMPLE="events/demo/traffic.log"
WATCH_LOG="$RUN_DIR/watch.log"
PROBE_LOG="$RUN_DIR/probe.log"
EVALUATOR_LOG="$RUN_DIR/evaluator.log"
PROBE_EVENT="events/scheduled.json"
EVALUATOR_EVENT="events/scheduled-evaluator.json"
FUNCTIONS=(component-probe health-api log-metrics alert-evaluator incident-notifier security-responder)
HEALTH_URL="http://127.0.0.1:$LAMBDA_PORT/lambda-url/health-api/api/health"

STEPS=9
n=0
step() {
  n=$((n + 1))
  say "[$n/$STEPS] $*"
}

pid_start_time() {
  sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20
}

# Record a background process (its own process group, made with setsid).
record_pid() {
  echo "$1 $2 $(pid_start_time "$2")" >>"$PIDS_FILE"
}

cleaned=0
# shellcheck disable=SC2317  # called from the EXIT trap
cleanup() {
  local rc=$?
  [ "$cleaned" -eq 0 ] || return 0
  cleaned=1
  trap - EXIT INT TERM
  echo >&2
  say "stopping what this run started"
  "$ROOT/scripts/stop.sh" || true
  exit "$rc"
}

cd "$ROOT"
mkdir -p "$RUN_DIR"

# Refuse to start twice: a previous `make run` that is still going (or was
# killed without `make stop`) owns .local/run/pids.
if [ -s "$PIDS_FILE" ]; then
  while read -r name pid start; do
    if [ -n "${pid:-}" ] && pid_alive "$pid" && [ "$(pid_start_time "$pid")" = "$start" ]; then
      die "a previous 'make run' is still running ($name, pid $pid); stop it with 'make stop'"
    fi
  done <"$PIDS_FILE"
  rm -f "$PIDS_FILE"
fi

step "bootstrap"
"$ROOT/scripts/bootstrap.sh"

if port_open "$LAMBDA_PORT"; then
  owner="$(port_owner "$LAMBDA_PORT")"
  die "port 127.0.0.1:$LAMBDA_PORT is taken${owner:+ by $owner}; stop that process or set LAMBDA_PORT"
fi
if port_open "$RECEIVER_PORT"; then
  owner="$(port_owner "$RECEIVER_PORT")"
  die "port 127.0.0.1:$RECEIVER_PORT (the local webhook receiver) is taken${owner:+ by $owner}; stop that process or set RECEIVER_PORT"
fi
[ -f "$DEMO_SAMPLE" ] || die "$DEMO_SAMPLE not found (the demo's sample traffic)"
[ -f "$PROBE_EVENT" ] || die "$PROBE_EVENT not found (the sample scheduled event)"
[ -f "$EVALUATOR_EVENT" ] || die "$EVALUATOR_EVENT not found (the sample scheduled event)"

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "local stack up (moto, postgres, redis, oidc fixture, alertmanager)"
"$ROOT/scripts/stack.sh" up --started-file "$STARTED_FILE" \
  || die "stack up failed (see the lines above; logs under .local/stack/)"

step "provision DynamoDB table and SNS topic in moto"
"$ROOT/scripts/provision.sh" || die "provisioning moto failed"

if [ ! -s "$TOKEN_FILE" ]; then
  (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$TOKEN_FILE")
fi
# log-metrics keys its email/IP pseudonyms with this (kept, so pseudonyms
# stay stable across runs).
if [ ! -s "$METRICS_TOKEN_FILE" ]; then
  (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$METRICS_TOKEN_FILE")
fi
# POST/GET /api/silences.
if [ ! -s "$ADMIN_TOKEN_FILE" ]; then
  (umask 077 && od -An -tx1 -N24 /dev/urandom | tr -d ' \n' >"$ADMIN_TOKEN_FILE")
fi
# incident-notifier signs its generic webhook deliveries with this.
if [ ! -s "$SIGNING_KEY_FILE" ]; then
  (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$SIGNING_KEY_FILE")
fi
if [ ! -s "$REDACTION_KEY_FILE" ]; then
  (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$REDACTION_KEY_FILE")
fi
set -a
eval "$("$ROOT/scripts/stack.sh" env)"
# shellcheck disable=SC2034  # exported (set -a) for the functions
HEALTH_TOKEN="$(cat "$TOKEN_FILE")"
# shellcheck disable=SC2034  # exported (set -a) for the functions
REDACTION_KEY="$(cat "$REDACTION_KEY_FILE")"
# shellcheck disable=SC2034  # exported (set -a) for the functions
METRICS_TOKEN="$(cat "$METRICS_TOKEN_FILE")"
# shellcheck disable=SC2034  # exported (set -a) for the functions
ADMIN_TOKEN="$(cat "$ADMIN_TOKEN_FILE")"
# The topic provision.sh created: log-metrics, component-probe and
# alert-evaluator publish incidents there (read them back from the queue
# blindspotx-incidents-local).
INCIDENTS_TOPIC_ARN="${INCIDENTS_TOPIC_ARN:?scripts/stack.sh env sets no INCIDENTS_TOPIC_ARN}"
# incident-notifier: every channel points at the local receiver. In AWS these
# are secret references (template.yaml), never plain values.
SLACK_WEBHOOK_URL="http://127.0.0.1:$RECEIVER_PORT/slack"
WEBHOOK_URL="http://127.0.0.1:$RECEIVER_PORT/webhook"
# shellcheck disable=SC2034  # exported (set -a) for the functions
WEBHOOK_SIGNING_KEY="$(cat "$SIGNING_KEY_FILE")"
PAGERDUTY_EVENTS_URL="http://127.0.0.1:$RECEIVER_PORT/pagerduty/v2/enqueue"
PAGERDUTY_ROUTING_KEY="local-demo-routing-key"
TEAMS_WEBHOOK_URL="http://127.0.0.1:$RECEIVER_PORT/teams"
# ALERTMANAGER_URL comes from the stack env: the stack's own Alertmanager
# (see what it holds with `amtool --alertmanager.url=$ALERTMANAGER_URL alert query`).
# security-responder: dry-run (records the blocklist row it would write,
# touches nothing) against the stack's BlindspotX database, through the
# responder's own role; the break-glass account is never revoked.
RESPONDER_MODE="dry-run"
REVOKER="blocklist"
BLOCKLIST_DATABASE_URL="${BLOCKLIST_DATABASE_URL:?scripts/stack.sh env sets no BLOCKLIST_DATABASE_URL}"
PROTECTED_PRINCIPALS="${PROTECTED_PRINCIPALS:-break-glass-admin}"
RUST_LOG="${RUST_LOG:-info}"
set +a

step "build ${FUNCTIONS[*]} (the first build takes minutes)"
for f in "${FUNCTIONS[@]}"; do
  cargo build --bin "$f" || die "cargo build --bin $f failed"
done

step "cargo lambda watch on 127.0.0.1:$LAMBDA_PORT (log: .local/run/watch.log)"
: >"$WATCH_LOG"
setsid cargo lambda watch --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" \
  </dev/null >>"$WATCH_LOG" 2>&1 &
watch_pid=$!
record_pid cargo-lambda-watch "$watch_pid"
start=$SECONDS
until port_open "$LAMBDA_PORT"; do
  if ! kill -0 "$watch_pid" 2>/dev/null; then
    tail -n 30 "$WATCH_LOG" >&2
    die "cargo lambda watch exited (log: $WATCH_LOG)"
  fi
  if [ $((SECONDS - start)) -ge "$BUILD_WAIT" ]; then
    die "cargo lambda watch did not answer on port $LAMBDA_PORT within ${BUILD_WAIT}s"
  fi
  sleep 0.5
done

step "local webhook receiver on 127.0.0.1:$RECEIVER_PORT (requests: .local/run/receiver.jsonl)"
: >"$RECEIVER_LOG"
setsid python3 "$ROOT/scripts/receiver.py" "$RECEIVER_PORT" "$RECEIVER_LOG" \
  </dev/null >>"$RUN_DIR/receiver.log" 2>&1 &
record_pid receiver "$!"
start=$SECONDS
until port_open "$RECEIVER_PORT"; do
  [ $((SECONDS - start)) -lt 10 ] || die "the receiver did not start (log: $RUN_DIR/receiver.log)"
  sleep 0.2
done

invoke_probe() {
  cargo lambda invoke --invoke-address 127.0.0.1 --invoke-port "$LAMBDA_PORT" \
    component-probe --data-file "$PROBE_EVENT"
}

step "invoke component-probe (then every ${PROBE_EVERY}s, log: .local/run/probe.log)"
: >"$PROBE_LOG"
invoke_probe >>"$PROBE_LOG" 2>&1 &
invoke_pid=$!
start=$SECONDS
next_note=30
while kill -0 "$invoke_pid" 2>/dev/null; do
  if [ $((SECONDS - start)) -ge "$BUILD_WAIT" ]; then
    kill "$invoke_pid" 2>/dev/null || true
    die "component-probe did not answer within ${BUILD_WAIT}s (log: $WATCH_LOG)"
  fi
  if [ $((SECONDS - start)) -ge "$next_note" ]; then
    say "  still waiting for component-probe ($((SECONDS - start))s; compiling? see .local/run/watch.log)"
    next_note=$((next_note + 30))
  fi
  sleep 1
done
if ! wait "$invoke_pid"; then
  cat "$PROBE_LOG" >&2
  tail -n 30 "$WATCH_LOG" >&2
  die "invoking component-probe failed (logs: $PROBE_LOG, $WATCH_LOG)"
fi
say "  component-probe answered:"
sed 's/^/    /' "$PROBE_LOG" >&2
echo >&2

# The periodic probe: its own process group so `make stop` ends it whole.
# shellcheck disable=SC2016  # expanded by the inner bash
setsid bash -c '
  while sleep "$1"; do
    printf "\n--- %s\n" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    cargo lambda invoke --invoke-address 127.0.0.1 --invoke-port "$2" \
      component-probe --data-file "$3" || echo "(invoke failed: $?)"
  done' probe-loop "$PROBE_EVERY" "$LAMBDA_PORT" "$PROBE_EVENT" \
  </dev/null >>"$PROBE_LOG" 2>&1 &
record_pid probe-loop "$!"

# The alert evaluator, as its schedule runs it in AWS.
: >"$EVALUATOR_LOG"
# shellcheck disable=SC2016  # expanded by the inner bash
setsid bash -c '
  while sleep "$1"; do
    printf "\n--- %s\n" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    cargo lambda invoke --invoke-address 127.0.0.1 --invoke-port "$2" \
      alert-evaluator --data-file "$3" || echo "(invoke failed: $?)"
  done' evaluator-loop "$EVALUATE_EVERY" "$LAMBDA_PORT" "$EVALUATOR_EVENT" \
  </dev/null >>"$EVALUATOR_LOG" 2>&1 &
record_pid evaluator-loop "$!"

step "demo: sample traffic -> log-metrics -> incidents -> notifier and responder"
python3 "$ROOT/scripts/demo.py" --port "$LAMBDA_PORT" --work "$DEMO_DIR" \
  --receiver-log "$RECEIVER_LOG" --signing-key-file "$SIGNING_KEY_FILE" --sample "$DEMO_SAMPLE" \
  || die "the demo failed (function logs: $WATCH_LOG)"

# The drift probe reads the drift job's own log records (DRIFT_SOURCE=logs,
# the default): the first probe ran before the demo's drift scan reached
# log-metrics, so probe once more for the health answer below.
invoke_probe >>"$PROBE_LOG" 2>&1 || say "  (probing again failed: see $PROBE_LOG)"

step "ready"
health_body="$(mktemp "$RUN_DIR/health.XXXXXX")"
code="$(curl -s -o "$health_body" -m 300 -w '%{http_code}' "$HEALTH_URL" 2>/dev/null || true)"
say "  GET $HEALTH_URL -> HTTP ${code:-none}: $(head -c 600 "$health_body")"
rm -f "$health_body"
metrics_lines="$(curl -s -m 60 -H "Authorization: Bearer $METRICS_TOKEN" \
  "http://127.0.0.1:$LAMBDA_PORT/lambda-url/health-api/metrics" | grep -c -v '^#' || true)"
say "  GET /metrics with the bearer token -> ${metrics_lines:-0} samples, e.g.:"
curl -s -m 60 -H "Authorization: Bearer $METRICS_TOKEN" \
  "http://127.0.0.1:$LAMBDA_PORT/lambda-url/health-api/metrics" \
  | grep -E '^(auth_requests_total|token_operations_total|drift_detections_total|active_sessions)' | head -n 8 | sed 's/^/    /' >&2 || true
cat >&2 <<EOF

  health:   $HEALTH_URL
  details:  curl -H "Authorization: Bearer \$(cat .local/run/health-token)" $HEALTH_URL
  metrics:  curl -H "Authorization: Bearer \$(cat .local/run/metrics-token)" http://127.0.0.1:$LAMBDA_PORT/lambda-url/health-api/metrics
  silences: curl -H "Authorization: Bearer \$(cat .local/run/admin-token)" http://127.0.0.1:$LAMBDA_PORT/lambda-url/health-api/api/silences
  probe:    cargo lambda invoke --invoke-address 127.0.0.1 --invoke-port $LAMBDA_PORT component-probe --data-file $PROBE_EVENT
  logs in:  cargo lambda invoke --invoke-address 127.0.0.1 --invoke-port $LAMBDA_PORT log-metrics --data-file events/logs-json.json
  evaluate: cargo lambda invoke --invoke-address 127.0.0.1 --invoke-port $LAMBDA_PORT alert-evaluator --data-file $EVALUATOR_EVENT
  incidents: published to $INCIDENTS_TOPIC_ARN, readable from the SQS queue blindspotx-incidents-local
  notifier: deliveries to the local receiver in .local/run/receiver.jsonl (Slack, webhook, PagerDuty)
  demo:     python3 scripts/demo.py --port $LAMBDA_PORT --work .local/run/demo --receiver-log .local/run/receiver.jsonl --signing-key-file .local/run/webhook-signing-key
  logs:     .local/run/watch.log (functions), .local/run/probe.log (probe results),
            .local/run/evaluator.log (alert-evaluator runs, every ${EVALUATE_EVERY}s)
  stack:    scripts/stack.sh status;  env: eval "\$(scripts/stack.sh env)"

  Ctrl-C (or 'make stop' from another terminal) stops what this run started.
  Function logs follow.

EOF

# Follow the function logs until Ctrl-C or until watch exits.
tail -n 0 --pid="$watch_pid" -F "$WATCH_LOG" || true
if [ ! -f "$PIDS_FILE" ]; then
  cleaned=1
  say "stopped from elsewhere ('make stop')"
  exit 0
fi
die "cargo lambda watch exited (log: $WATCH_LOG)"
