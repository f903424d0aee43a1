# shellcheck shell=bash disable=SC2034  # variables used by the sourcing scripts
# Common helpers for the scripts in this folder. Source it, don't run it.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
LOCAL_DIR="$ROOT/.local"
STACK_DIR="$LOCAL_DIR/stack"
RUN_DIR="$LOCAL_DIR/run"
# Single binaries the bootstrap extracts (promtool, prometheus, alertmanager,
# amtool) and links (checkov, sam).
TOOLS_DIR="$LOCAL_DIR/tools"

# The project venv first (cargo-lambda, moto, cfn-lint), then rustup's cargo.
case ":$PATH:" in
  *":$VENV/bin:"*) ;;
  *) PATH="$VENV/bin:$PATH" ;;
esac
case ":$PATH:" in
  *":$TOOLS_DIR:"*) ;;
  *) PATH="$TOOLS_DIR:$PATH" ;;
esac
CARGO_BIN="${CARGO_HOME:-${HOME:-/root}/.cargo}/bin"
case ":$PATH:" in
  *":$CARGO_BIN:"*) ;;
  *) PATH="$PATH:$CARGO_BIN" ;;
esac
export PATH

# *_PORT_SET: the port was chosen by the caller (not the default).
MOTO_PORT_SET="${MOTO_PORT:+1}"
PG_PORT_SET="${PG_PORT:+1}"
REDIS_PORT_SET="${REDIS_PORT:+1}"
OIDC_PORT_SET="${OIDC_PORT:+1}"
OIDC_TLS_PORT_SET="${OIDC_TLS_PORT:+1}"
ALERTMANAGER_PORT_SET="${ALERTMANAGER_PORT:+1}"
MOTO_PORT="${MOTO_PORT:-55000}"
PG_PORT="${PG_PORT:-55432}"
REDIS_PORT="${REDIS_PORT:-56379}"
OIDC_PORT="${OIDC_PORT:-58080}"
OIDC_TLS_PORT="${OIDC_TLS_PORT:-58443}"
ALERTMANAGER_PORT="${ALERTMANAGER_PORT:-59093}"

TABLE_NAME_DEFAULT="blindspotx-monitoring"
TOPIC_NAME_DEFAULT="blindspotx-incidents"

SCRIPT_NAME="$(basename "$0" .sh)"

say()  { printf '%s: %s\n' "$SCRIPT_NAME" "$*" >&2; }
die()  { printf '%s: error: %s\n' "$SCRIPT_NAME" "$*" >&2; exit 1; }

is_root() { [ "$(id -u)" -eq 0 ]; }

# Directory holding the Postgres server binaries (initdb, pg_ctl, ...):
# /usr/lib/postgresql/<ver>/bin on Debian, newest version first; else PATH.
pg_bindir() {
  local d
  # shellcheck disable=SC2012
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -rn); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
      printf '%s\n' "$d"
      return 0
    fi
  done
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v initdb)"
    return 0
  fi
  return 1
}

# True if something accepts TCP connections on 127.0.0.1:$1.
port_open() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# One line naming whoever listens on 127.0.0.1:$1, if ss can tell.
port_owner() {
  if command -v ss >/dev/null 2>&1; then
    ss -Hltnp "sport = :$1" 2>/dev/null | sed -n 's/.*users:((\(.*\)))/\1/p' | head -n1
  fi
}

# HTTP GET $1 answers with a status below 500 within $2 seconds (default 2).
http_ok() {
  local url="$1" t="${2:-2}" code
  if command -v curl >/dev/null 2>&1; then
    code="$(curl -s -o /dev/null -m "$t" -w '%{http_code}' "$url" 2>/dev/null)" || return 1
    [ "$code" -ge 200 ] 2>/dev/null && [ "$code" -lt 500 ]
  else
    python3 - "$url" "$t" <<'EOF' >/dev/null 2>&1
import sys, urllib.request, urllib.error
try:
    urllib.request.urlopen(sys.argv[1], timeout=float(sys.argv[2]))
except urllib.error.HTTPError as e:
    sys.exit(0 if e.code < 500 else 1)
EOF
  fi
}

# Is PID $1 alive and is its command line matching the extended regex $2?
pid_matches() {
  local pid="$1" pattern="$2" cmd
  [ -n "$pid" ] && [ "$pid" -gt 0 ] 2>/dev/null || return 1
  [ -r "/proc/$pid/cmdline" ] || return 1
  cmd="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [ -n "$cmd" ] || return 1   # zombie
  printf '%s' "$cmd" | grep -Eq -- "$pattern"
}

# Is PID $1 alive (a zombie waiting to be reaped counts as gone)?
pid_alive() {
  local state
  state="$(sed -n 's/^[0-9]* (.*) \([A-Za-z]\).*/\1/p' "/proc/$1/stat" 2>/dev/null)" || return 1
  [ -n "$state" ] && [ "$state" != Z ] && [ "$state" != X ]
}

# Is any process of process group $1 alive (zombies excluded)?
group_alive() {
  ps -e -o pgid=,stat= 2>/dev/null | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

# Send SIGTERM to PID $1 (or to process group -PID when $2 = group), wait up
# to $3 seconds (default 10), then SIGKILL.
stop_pid() {
  local pid="$1" mode="${2:-pid}" wait_s="${3:-10}" target check i
  target="$pid"
  check=pid_alive
  if [ "$mode" = group ]; then
    target="-$pid"
    check=group_alive
  fi
  kill -TERM -- "$target" 2>/dev/null || return 0
  for ((i = 0; i < wait_s * 10; i++)); do
    "$check" "$pid" || return 0
    sleep 0.1
  done
  say "pid $pid did not stop after ${wait_s}s, sending SIGKILL"
  kill -KILL -- "$target" 2>/dev/null || true
}
