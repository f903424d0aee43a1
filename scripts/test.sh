#!/usr/bin/env bash
# `make test` (and CI): bootstrap, local stack up, then format check,
# clippy, the whole workspace's tests against the stack, cfn-lint; finally
# stop exactly the stack services this run started, even on failure or
# Ctrl-C, and exit with the status of the first failing step.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
cd "$ROOT"

STEPS=8
n=0
step() {
  n=$((n + 1))
  say "[$n/$STEPS] $*"
}

mkdir -p "$RUN_DIR"
STARTED_FILE="$(mktemp "$RUN_DIR/test-started.XXXXXX")"

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  say "stopping the stack services this run started"
  "$ROOT/scripts/stack.sh" down --started-file "$STARTED_FILE" || true
  rm -f "$STARTED_FILE"
  if [ "$rc" -eq 0 ]; then
    say "all steps passed"
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
awk '/^test result: / { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed;?$/) p += $i; if ($(i+1) ~ /^failed;?$/) f += $i } }
     END { printf "cargo-test: %d passed, %d failed\n", p, f }' "$test_log"
[ "$test_rc" -eq 0 ] || exit "$test_rc"

step "cfn-lint template.yaml"
[ -f template.yaml ] || die "template.yaml not found"
cfn-lint template.yaml
