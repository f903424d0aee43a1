#!/usr/bin/env bash
# `make test` (and CI): bootstrap, local stack up (Alertmanager included),
# then format check,
# clippy, the whole workspace's tests against the stack, cfn-lint, checkov
# and `sam validate --lint` on template.yaml; finally
# stop exactly the stack services this run started, even on failure or
# Ctrl-C, and exit with the status of the first failing step.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

STEPS=14
n=0
step() {
  n=$((n + 1))
  say "[$n/$STEPS] $*"
}

mkdir -p "$RUN_DIR"
test_summary=""
STARTED_FILE="$(mktemp "$RUN_DIR/test-started.XXXXXX")"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  say "stopping the stack services this run started"
  "$ROOT/scripts/stack.sh" down --started-file "$STARTED_FILE" || true
  rm -f "$STARTED_FILE"
  if [ "$rc" -eq 0 ]; then
    say "all steps passed"
    # The test count closes the run, after the steps that follow the tests.
    echo "$test_summary"
  else
    say "FAILED at step $n (exit $rc)"
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step "bootstrap"
"$ROOT/scripts/bootstrap.sh"

step "moto launcher: per-item transaction rollback (python unittest)"
"$VENV/bin/python" -m unittest "$ROOT/scripts/test_moto_server.py"

step "local stack up"
"$ROOT/scripts/stack.sh" up --started-file "$STARTED_FILE"

step "provision moto (table, topic)"
"$ROOT/scripts/provision.sh"

step "stack env"
stack_env="$("$ROOT/scripts/stack.sh" env)"
set -a
eval "$stack_env"
set +a
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --workspace --all-targets --locked -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings

step "cargo test --workspace --locked --no-fail-fast"
test_log="$RUN_DIR/cargo-test.log"
set +e
cargo test --workspace --locked --no-fail-fast 2>&1 | tee "$test_log"
test_rc=${PIPESTATUS[0]}
set -e
# One closing line for the whole workspace (cargo prints one per test binary).
test_summary="$(awk '/^test result: / { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "cargo-test: %d passed, %d failed\n", p, f }' "$test_log")"
echo "$test_summary"
[ "$test_rc" -eq 0 ] || exit "$test_rc"

step "promtool check metrics (replay's Prometheus output)"
command -v promtool >/dev/null 2>&1 || die "promtool not found (scripts/bootstrap.sh extracts it into .local/tools)"
# replay's entry point as the test step built it: the tests package links
# tools/replay/src/main.rs as `replay-cli` for its CLI tests. (`cargo build
# -p replay` here would resolve replay's features alone and rebuild half
# the dependencies: two minutes.)
replay_bin="${CARGO_TARGET_DIR:-$ROOT/target}/debug/replay-cli"
[ -x "$replay_bin" ] || die "$replay_bin not built by the test step"
corpus="$(mktemp "$RUN_DIR/corpus.XXXXXX")"
inputs=("$ROOT"/events/logs-json.json "$ROOT"/events/logs-text.json)
# The shared benchmark generator sits next to the project in CI and on the
# developers' machines; it gives every metric of the contract a few series.
if [ -f "$ROOT/../shared/bench/gen_logs.py" ]; then
  python3 "$ROOT/../shared/bench/gen_logs.py" 5000 "$corpus" 3
  inputs+=("$corpus")
fi
metrics_text="$("$replay_bin" --format prometheus "${inputs[@]}" 2>/dev/null)"
rm -f "$corpus"
[ -n "$metrics_text" ] || die "replay printed no metrics"
printf '%s\n' "$metrics_text" | promtool check metrics
say "promtool accepts $(printf '%s\n' "$metrics_text" | grep -vc '^#') samples"

step "replay agrees with the shared references (counters, alert transitions)"
if [ -f "$ROOT/../shared/bench/gen_logs.py" ]; then
  corpus="$(mktemp "$RUN_DIR/corpus.XXXXXX")"
  # A seed no unit test uses: held-out logs.
  python3 "$ROOT/../shared/bench/gen_logs.py" 30000 "$corpus" 11
  "$replay_bin" --format json "$corpus" >"$corpus.metrics.json" 2>/dev/null
  python3 "$ROOT/../shared/bench/reference_counts.py" "$corpus" >"$corpus.reference.json"
  python3 - "$corpus.metrics.json" "$corpus.reference.json" <<'PY'
import json, sys
got, want = (json.load(open(p)) for p in sys.argv[1:3])
bad = [(k, v, got.get(k)) for k, v in want.items() if got.get(k) != v]
for k, v, g in bad[:10]:
    print(f"  {k}: reference {v}, replay {g}")
if bad:
    sys.exit(f"replay disagrees with reference_counts.py on {len(bad)} of {len(want)} series")
print(f"replay agrees with reference_counts.py on all {len(want)} series")
PY
  "$replay_bin" --alerts "$corpus" >"$corpus.alerts.jsonl" 2>/dev/null
  python3 "$ROOT/bench/alerts_reference.py" "$corpus" "$corpus.alerts.jsonl"
  rm -f "$corpus" "$corpus".*
else
  say "skipped: ../shared/bench not found next to the project"
fi

step "dashboards: template in sync, promtool check config + rules, rule unit tests, amtool check-config"
# infra/dashboards/*.json are embedded in template.yaml by scripts/dashboards.py;
# tests/files/dashboards.rs (in the cargo test step) checks what they show.
python3 "$ROOT/scripts/dashboards.py" --check
# The README's picture is drawn from infra/dashboards/security.json: redraw
# it and fail when the committed one differs (the dashboard changed).
picture="$(mktemp)"
python3 "$ROOT/scripts/render_dashboard.py" "$ROOT/infra/dashboards/security.json" "$picture"
cmp -s "$picture" "$ROOT/docs/images/security-dashboard.svg" \
  || { rm -f "$picture"; die "docs/images/security-dashboard.svg is stale: python3 scripts/render_dashboard.py infra/dashboards/security.json docs/images/security-dashboard.svg"; }
rm -f "$picture"
command -v promtool >/dev/null 2>&1 || die "promtool not found (scripts/bootstrap.sh extracts it into .local/tools)"
promtool check config "$ROOT/infra/prometheus/prometheus.yml"
promtool check rules "$ROOT/infra/prometheus/alerts.yml"
promtool test rules "$ROOT/infra/prometheus/alerts_test.yml"
# The example Alertmanager configuration (infra/alertmanager/alertmanager.yml).
command -v amtool >/dev/null 2>&1 || die "amtool not found (scripts/bootstrap.sh extracts it into .local/tools)"
amtool check-config "$ROOT/infra/alertmanager/alertmanager.yml"

step "cfn-lint template.yaml"
[ -f template.yaml ] || die "template.yaml not found"
cfn-lint template.yaml

step "checkov (template.yaml; skips are justified in the resources' Metadata)"
command -v checkov >/dev/null 2>&1 || die "checkov not found (scripts/bootstrap.sh links it into .local/tools)"
# --skip-download: offline, no Prisma Cloud guideline lookups.
checkov -f template.yaml --framework cloudformation --quiet --compact --skip-download

step "sam validate --lint (offline; no AWS credentials needed)"
command -v sam >/dev/null 2>&1 || die "sam not found (scripts/bootstrap.sh links it into .local/tools)"
AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-us-east-1}" SAM_CLI_TELEMETRY=0 \
  sam validate --lint -t template.yaml
