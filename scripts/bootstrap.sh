#!/usr/bin/env bash
# Install what the build, the tests and the local stack need, if missing:
#   - .venv/ (python3 -m venv) with scripts/requirements.txt:
#     moto[server] 5.2.x, boto3, cargo-lambda (brings zig), cfn-lint
#   - Debian packages redis-server, postgresql and openssl (the local CA and
#     TLS certificate of the stack), only when their binaries are absent
#     (apt-get update once first);
#   - promtool, prometheus, alertmanager and amtool in .local/tools,
#     extracted from Debian's prometheus and prometheus-alertmanager
#     packages (no Debian service installed or started);
#   - checkov and the AWS SAM CLI, each in its own venv under .local/venvs
#     (scripts/requirements-checkov.txt, scripts/requirements-sam.txt),
#     linked into .local/tools;
#   - Node.js and npm (Debian, when absent), and @grafana/schema with
#     typescript in .local/grafana-schema (scripts/grafana-schema/), the
#     Grafana dashboard schema check of tests/files/dashboards.rs.
# Idempotent and quiet: a second run only compares a stamp and checks that a
# few binaries exist. Set BOOTSTRAP_FORCE=1 to reinstall the venv packages.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

REQS="$ROOT/scripts/requirements.txt"
STAMP="$VENV/.bootstrap-stamp"

# ---------------------------------------------------------------- Debian ---
apt_updated=0
apt_update_once() {
  local sudo=()
  if ! is_root; then
    command -v sudo >/dev/null 2>&1 || die "need root (or sudo) to install Debian packages: $*"
    sudo=(sudo)
  fi
  command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install these packages by hand: $*"
  if [ "$apt_updated" -eq 0 ]; then
    say "apt-get update"
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
      apt-get -o DPkg::Lock::Timeout=600 -qq update >/dev/null \
      || die "apt-get update failed"
    apt_updated=1
  fi
}
apt_install() {
  local sudo=()
  is_root || sudo=(sudo)
  apt_update_once "$@"
  say "apt-get install $*"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get -o DPkg::Lock::Timeout=600 -qq -y install --no-install-recommends "$@" >/dev/null \
    || die "apt-get install $* failed"
}

debs=()
if ! command -v redis-server >/dev/null 2>&1; then
  debs+=(redis-server)
fi
if ! command -v redis-cli >/dev/null 2>&1 && [[ ! " ${debs[*]} " == *" redis-server "* ]]; then
  debs+=(redis-tools)
fi
if ! pg_bindir >/dev/null; then
  debs+=(postgresql)
fi
if ! command -v python3 >/dev/null 2>&1; then
  debs+=(python3 python3-venv)
fi
if ! command -v openssl >/dev/null 2>&1; then
  debs+=(openssl)
fi
if [ "${#debs[@]}" -gt 0 ]; then
  apt_install "${debs[@]}"
fi
command -v redis-server >/dev/null 2>&1 || die "redis-server still missing after install"
pg_bindir >/dev/null || die "Postgres server binaries (initdb, pg_ctl) still missing after install"
command -v openssl >/dev/null 2>&1 || die "openssl still missing after install"

# Prometheus and Alertmanager binaries, taken out of Debian's packages
# without installing them (dpkg-deb -x), so no Debian service is set up or
# started on this machine: promtool checks the exposition and the rules,
# the tests run their own prometheus server, scripts/stack.sh runs our own
# alertmanager on a loopback port, and amtool drives it and the health
# API's silences.
#   prometheus               -> prometheus, promtool
#   prometheus-alertmanager  -> alertmanager (/usr/bin/prometheus-alertmanager), amtool,
#                               and the notification templates at the path
#                               Debian's build reads them from
extract_deb() { # package  src-in-package:dest-name ...
  local pkg="$1" tmp pair
  shift
  apt_update_once "$pkg"
  tmp="$(mktemp -d)"
  say "extracting $* from Debian's $pkg package"
  (cd "$tmp" && apt-get -qq download "$pkg" >/dev/null 2>&1) \
    || { rm -rf "$tmp"; die "apt-get download $pkg failed"; }
  dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/root" \
    || { rm -rf "$tmp"; die "cannot unpack the $pkg package"; }
  mkdir -p "$TOOLS_DIR"
  for pair in "$@"; do
    case "${pair#*:}" in
      /*) # A data file the binary reads from a fixed path (root's).
        local sudo=()
        is_root || sudo=(sudo)
        "${sudo[@]}" install -D -m 0644 "$tmp/root/${pair%%:*}" "${pair#*:}" \
          || { rm -rf "$tmp"; die "cannot install ${pair#*:} from $pkg"; } ;;
      *) install -m 0755 "$tmp/root/${pair%%:*}" "$TOOLS_DIR/${pair#*:}" \
          || { rm -rf "$tmp"; die "$pkg has no ${pair%%:*}"; } ;;
    esac
  done
  rm -rf "$tmp"
}
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  extract_deb prometheus usr/bin/promtool:promtool usr/bin/prometheus:prometheus
fi
AM_TEMPLATES=/usr/share/prometheus/alertmanager
if ! command -v alertmanager >/dev/null 2>&1 || ! command -v amtool >/dev/null 2>&1 \
  || [ ! -f "$AM_TEMPLATES/default.tmpl" ] || [ ! -f "$AM_TEMPLATES/email.tmpl" ]; then
  extract_deb prometheus-alertmanager usr/bin/prometheus-alertmanager:alertmanager \
    usr/bin/amtool:amtool "${AM_TEMPLATES#/}/default.tmpl:$AM_TEMPLATES/default.tmpl" \
    "${AM_TEMPLATES#/}/email.tmpl:$AM_TEMPLATES/email.tmpl"
fi
for b in prometheus alertmanager amtool; do
  command -v "$b" >/dev/null 2>&1 || die "$b still missing"
done
command -v promtool >/dev/null 2>&1 || die "promtool still missing"

# ------------------------------------------------------------ Rust tools ---
command -v cargo >/dev/null 2>&1 || die "cargo not found (looked in PATH and ~/.cargo/bin); install Rust with rustup"
if ! cargo fmt --version >/dev/null 2>&1 || ! cargo clippy --version >/dev/null 2>&1; then
  if command -v rustup >/dev/null 2>&1; then
    say "rustup component add rustfmt clippy"
    rustup component add rustfmt clippy >/dev/null 2>&1 \
      || say "warning: could not add rustfmt/clippy (offline?); make test needs them"
  else
    say "warning: cargo fmt / cargo clippy missing and no rustup; make test needs them"
  fi
fi

# ----------------------------------------------------------- Python venv ---
# The base interpreter: python3 from PATH, not the venv's own.
PY3="$(PATH="${PATH//"$VENV/bin:"/}" command -v python3 || true)"
[ -n "$PY3" ] || die "python3 not found"
want_stamp="$( { cat "$REQS"; "$PY3" -c 'import sys; print(sys.version)' 2>/dev/null || true; } | sha256sum | cut -d' ' -f1)"
have_stamp="$(cat "$STAMP" 2>/dev/null || true)"
venv_ok=1
for b in python cargo-lambda cfn-lint; do
  [ -x "$VENV/bin/$b" ] || venv_ok=0
done
if [ "${BOOTSTRAP_FORCE:-0}" = 1 ] || [ "$venv_ok" -ne 1 ] || [ "$want_stamp" != "$have_stamp" ]; then
  if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
    say "creating .venv"
    rm -rf "$VENV"
    if ! "$PY3" -m venv "$VENV" >/dev/null 2>&1; then
      # Debian's system python needs python3-venv for ensurepip.
      rm -rf "$VENV"
      apt_install python3-venv
      "$PY3" -m venv "$VENV" || die "$PY3 -m venv .venv failed"
    fi
  fi
  say "installing Python tools into .venv (moto[server], boto3, cargo-lambda, cfn-lint)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS" \
    || die "pip install -r scripts/requirements.txt failed"
  for b in cargo-lambda cfn-lint; do
    [ -x "$VENV/bin/$b" ] || die ".venv/bin/$b missing after pip install"
  done
  "$VENV/bin/python" -c 'import moto, boto3, werkzeug' \
    || die "moto/boto3 not importable from .venv"
  printf '%s\n' "$want_stamp" >"$STAMP"
  say "done: $("$VENV/bin/python" -c 'import moto; print("moto", moto.__version__)'), $("$VENV/bin/cargo-lambda" lambda --version 2>/dev/null | head -n1)"
fi

# ------------------------------------------------- template checkers ---
# checkov and the SAM CLI pin boto3 versions that conflict with the one
# moto is checked against (scripts/requirements.txt), so each gets its own
# venv under .local/venvs, with its entry point linked into .local/tools
# (on the PATH of make and the scripts). Same stamp logic as .venv.
tool_venv() { # name requirements-file binary
  local name="$1" reqs="$2" bin="$3"
  local dir="$LOCAL_DIR/venvs/$name" stamp want have
  stamp="$dir/.bootstrap-stamp"
  want="$( { cat "$reqs"; "$PY3" -c 'import sys; print(sys.version)' 2>/dev/null || true; } | sha256sum | cut -d' ' -f1)"
  have="$(cat "$stamp" 2>/dev/null || true)"
  if [ "${BOOTSTRAP_FORCE:-0}" = 1 ] || [ ! -x "$dir/bin/$bin" ] || [ "$want" != "$have" ]; then
    if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c 'import sys' >/dev/null 2>&1; then
      say "creating .local/venvs/$name"
      rm -rf "$dir"
      mkdir -p "$LOCAL_DIR/venvs"
      "$PY3" -m venv "$dir" || die "$PY3 -m venv .local/venvs/$name failed"
    fi
    say "installing $(grep -v '^#' "$reqs" | tr '\n' ' ')into .local/venvs/$name"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check -r "$reqs" \
      || die "pip install -r ${reqs#"$ROOT/"} failed"
    [ -x "$dir/bin/$bin" ] || die ".local/venvs/$name/bin/$bin missing after pip install"
    printf '%s\n' "$want" >"$stamp"
  fi
  mkdir -p "$TOOLS_DIR"
  ln -sfn "../venvs/$name/bin/$bin" "$TOOLS_DIR/$bin"
}
tool_venv checkov "$ROOT/scripts/requirements-checkov.txt" checkov
tool_venv sam "$ROOT/scripts/requirements-sam.txt" sam

# ------------------------------------------------ Grafana schema check ---
# tests/files/dashboards.rs checks infra/grafana/dashboards/*.json against
# Grafana's published dashboard schema: the npm package @grafana/schema
# (its Dashboard types), compiled with TypeScript's tsc. Both pinned in
# scripts/grafana-schema/package-lock.json, installed with `npm ci` into
# .local/grafana-schema; Node.js and npm from Debian when absent.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  node_debs=()
  command -v node >/dev/null 2>&1 || node_debs+=(nodejs)
  command -v npm >/dev/null 2>&1 || node_debs+=(npm)
  apt_install "${node_debs[@]}"
fi
schema_dir="$LOCAL_DIR/grafana-schema"
schema_want="$(cat "$ROOT/scripts/grafana-schema/package.json" "$ROOT/scripts/grafana-schema/package-lock.json" | sha256sum | cut -d' ' -f1)"
schema_have="$(cat "$schema_dir/.bootstrap-stamp" 2>/dev/null || true)"
if [ "${BOOTSTRAP_FORCE:-0}" = 1 ] || [ "$schema_want" != "$schema_have" ] \
  || [ ! -f "$schema_dir/node_modules/typescript/bin/tsc" ] \
  || [ ! -d "$schema_dir/node_modules/@grafana/schema" ]; then
  say "installing @grafana/schema and typescript into .local/grafana-schema"
  mkdir -p "$schema_dir"
  cp "$ROOT/scripts/grafana-schema/package.json" "$ROOT/scripts/grafana-schema/package-lock.json" "$schema_dir/"
  (cd "$schema_dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
    || die "npm ci in .local/grafana-schema failed"
  printf '%s\n' "$schema_want" >"$schema_dir/.bootstrap-stamp"
fi
