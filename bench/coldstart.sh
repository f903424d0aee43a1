#!/usr/bin/env bash
# Cold start and peak memory of every function's Lambda binary (issue 7).
#
# Usage: bench/coldstart.sh [--stack] [--no-build] [coldstart options...]
#   e.g. bench/coldstart.sh --stack --runs 20
#        bench/coldstart.sh --format json --check
# --no-build measures the binaries already in target/lambda; the harness
# is $COLDSTART_BIN if set.
#
# 1. Builds the six functions with `cargo build --profile lambda` (the
#    size-optimised profile of Cargo.toml, which `make package` also uses;
#    plain x86_64 here, arm64 there), then the harness on its own.
# 2. With --stack: starts the local stack (scripts/stack.sh up) and
#    provisions the table and topic, so the sample events can reach
#    DynamoDB and SNS; stops at exit exactly what it started. Without it,
#    the stack env is used when moto already answers, otherwise AWS calls go
#    to a port nothing listens on (init still works, except log-metrics,
#    whose cold start reads DynamoDB).
# 3. Runs the harness (target/release/coldstart) with the remaining options (see
#    `coldstart --help`): init time to the first /next (median, p90, max of
#    --runs starts), peak RSS (VmHWM) over the sample events and a 1 MiB
#    subscription payload, and the stripped binary sizes.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

FUNCTIONS=(component-probe health-api log-metrics alert-evaluator incident-notifier security-responder)
use_stack=0
build=1
args=()
for arg in "$@"; do
  case "$arg" in
    --stack) use_stack=1 ;;
    --no-build) build=0 ;;
    *) args+=("$arg") ;;
  esac
done

if [ "$build" = 1 ]; then
  packages=()
  for f in "${FUNCTIONS[@]}"; do packages+=(-p "$f"); done
  say "building the functions (profile lambda)"
  cargo build --profile lambda -q "${packages[@]}"
  # Apart: built together, the harness's features (tokio "process") would
  # be unified into the functions and change what is measured.
  say "building the harness (release)"
  cargo build --release -q -p coldstart
fi
target="${CARGO_TARGET_DIR:-$ROOT/target}"
harness="${COLDSTART_BIN:-$target/release/coldstart}"
[ -x "$harness" ] || die "$harness not found: run without --no-build"

started="$(mktemp)"
cleanup() {
  if [ -s "$started" ]; then
    say "stopping what this run started: $(tr '\n' ' ' <"$started")"
    "$ROOT/scripts/stack.sh" down --started-file "$started" || true
  fi
  rm -f "$started"
}
trap cleanup EXIT

if [ "$use_stack" = 1 ]; then
  "$ROOT/scripts/stack.sh" up --started-file "$started"
  "$ROOT/scripts/provision.sh"
fi
if [ -z "${AWS_ENDPOINT_URL:-}" ] && port_open "$MOTO_PORT"; then
  say "using the local stack (moto on :$MOTO_PORT)"
  stack_env="$("$ROOT/scripts/stack.sh" env)"
  set -a
  eval "$stack_env"
  set +a
fi

"$harness" --target-dir "$target" --events "$ROOT/events" "${args[@]}"
