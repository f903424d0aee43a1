#!/usr/bin/env bash
# Stop what `make run` (scripts/run.sh) started: the processes recorded in
# .local/run/pids (each the leader of a process group run.sh created; its
# group and any leftover descendants are stopped), then the stack services
# listed in .local/run/started. Services that were already running before
# `make run` are left alone. Safe to run twice.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

PIDS_FILE="$RUN_DIR/pids"
STARTED_FILE="$RUN_DIR/started"

# Start time of PID $1 (field 22 of /proc/PID/stat), to tell a reused PID.
pid_start_time() {
  sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f20
}

# All descendants of PID $1 (children first level, then deeper).
descendants() {
  ps -e -o pid=,ppid= 2>/dev/null | awk -v root="$1" '
    { parent[$1] = $2; pids[NR] = $1 }
    END {
      want[root] = 1
      changed = 1
      while (changed) {
        changed = 0
        for (i in pids) {
          p = pids[i]
          if (!(p in want) && (parent[p] in want)) { want[p] = 1; changed = 1 }
        }
      }
      for (p in want) if (p != root) print p
    }'
}

stopped_any=0
if [ -f "$PIDS_FILE" ]; then
  # Newest first.
  tac "$PIDS_FILE" | while read -r name pid start; do
    [ -n "${pid:-}" ] || continue
    if ! pid_alive "$pid" || [ "$(pid_start_time "$pid")" != "$start" ]; then
      say "$name: not running"
      continue
    fi
    kids="$(descendants "$pid" | tr '\n' ' ')"
    if [ "$(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ')" = "$pid" ]; then
      stop_pid "$pid" group 20
    else
      stop_pid "$pid" pid 20
    fi
    for k in $kids; do
      if pid_alive "$k"; then
        stop_pid "$k" pid 5
      fi
    done
    say "$name: stopped (pid $pid)"
  done
  rm -f "$PIDS_FILE"
  stopped_any=1
fi

if [ -f "$STARTED_FILE" ]; then
  "$ROOT/scripts/stack.sh" down --started-file "$STARTED_FILE"
  stopped_any=1
fi

if [ "$stopped_any" -eq 0 ]; then
  say "nothing to stop (no $PIDS_FILE or $STARTED_FILE)"
fi
