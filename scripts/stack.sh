#!/usr/bin/env bash
# The local stack the functions and the integration tests run against.
#
#   scripts/stack.sh up [--started-file FILE]   start what is not running
#   scripts/stack.sh down [--started-file FILE] stop what FILE lists (or all)
#   scripts/stack.sh env                        export lines for the stack
#   scripts/stack.sh status                     what runs where
#
# Services (all on 127.0.0.1, ports overridable by env of the same name):
#   moto      MOTO_PORT  55000  scripts/moto_server.py (requests serialized)
#   postgres  PG_PORT    55432  cluster in .local/stack/pg, db/user blindspotx
#   redis     REDIS_PORT 56379  no persistence, 64 MB
#   oidc      OIDC_PORT  58080  scripts/oidc_fixture.py (discovery + JWKS),
#             and OIDC_TLS_PORT 58443: the same over HTTPS, with a certificate
#             for localhost from a local CA in .local/stack/tls (made at `up`);
#             the endpoint of the certificates probe
#   alertmanager ALERTMANAGER_PORT 59093  Debian's Alertmanager (from
#             .local/tools, see bootstrap.sh), data in .local/stack/
#             alertmanager, clustering off, a route to a receiver that
#             sends nothing: the notifier's alertmanager channel posts to
#             it and tests read its API
#
# `up` appends the names of the services that this call started to the
# --started-file, so the caller can later stop exactly those with
# `down --started-file FILE`. Processes are stopped by PID, never by name.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"

SERVICES=(postgres redis moto oidc alertmanager)
AM_DIR="$STACK_DIR/alertmanager"
READY_TIMEOUT="${STACK_READY_TIMEOUT:-60}"
PG_PASSWORD_FILE="$STACK_DIR/pg-password"
PG_HOME_LINK="$STACK_DIR/pg"
TLS_DIR="$STACK_DIR/tls"
CA_DAYS=3650          # local CA: 10 years
SERVER_DAYS=90        # server certificate for localhost
SERVER_RENEW_DAYS=30  # regenerated at `up` when it expires within this

usage() {
  sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ------------------------------------------------------------- helpers ---

# Run a command as the OS user that owns the Postgres cluster (postgres
# refuses to run as root). From / so psql does not complain about the cwd.
as_pg() {
  if is_root; then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

pg_home() { readlink -f "$PG_HOME_LINK"; }

svc_pattern() {
  case "$1" in
    moto) echo 'moto_server\.py' ;;
    oidc) echo 'oidc_fixture\.py' ;;
    alertmanager) echo 'alertmanager' ;;
    redis) echo 'redis-server' ;;
    postgres) echo '(postgres|postmaster)' ;;
  esac
}

# Name of the env var that sets the port of service $1.
svc_var() {
  case "$1" in
    moto) echo MOTO_PORT ;;
    oidc) echo OIDC_PORT ;;
    alertmanager) echo ALERTMANAGER_PORT ;;
    redis) echo REDIS_PORT ;;
    postgres) echo PG_PORT ;;
  esac
}

# Non-empty when the caller set the port of service $1 explicitly.
svc_port_set() {
  case "$1" in
    moto) echo "$MOTO_PORT_SET" ;;
    oidc) echo "$OIDC_PORT_SET" ;;
    alertmanager) echo "$ALERTMANAGER_PORT_SET" ;;
    redis) echo "$REDIS_PORT_SET" ;;
    postgres) echo "$PG_PORT_SET" ;;
  esac
}

svc_conf_port() {
  case "$1" in
    moto) echo "$MOTO_PORT" ;;
    oidc) echo "$OIDC_PORT" ;;
    alertmanager) echo "$ALERTMANAGER_PORT" ;;
    redis) echo "$REDIS_PORT" ;;
    postgres) echo "$PG_PORT" ;;
  esac
}

# PID of our instance of service $1 if it is alive, else nothing.
svc_pid() {
  local svc="$1" pid=""
  if [ "$svc" = postgres ]; then
    [ -e "$PG_HOME_LINK" ] || return 0
    pid="$(head -n1 "$(pg_home)/data/postmaster.pid" 2>/dev/null || true)"
  else
    pid="$(cut -d' ' -f1 "$STACK_DIR/$svc.pid" 2>/dev/null || true)"
  fi
  if pid_matches "$pid" "$(svc_pattern "$svc")"; then
    echo "$pid"
  fi
}

# Port our instance of $1 was started on (recorded at start), else the
# configured one.
svc_port() {
  local svc="$1" p=""
  if [ -n "$(svc_pid "$svc")" ]; then
    if [ "$svc" = postgres ]; then
      p="$(cat "$STACK_DIR/postgres.port" 2>/dev/null || true)"
    else
      p="$(cut -d' ' -f2 "$STACK_DIR/$svc.pid" 2>/dev/null || true)"
    fi
  fi
  echo "${p:-$(svc_conf_port "$svc")}"
}

# HTTPS port of the oidc fixture: the one recorded at start when it runs
# (empty if that instance was started without TLS), else the configured one.
oidc_tls_port() {
  if [ -n "$(svc_pid oidc)" ]; then
    cut -s -d' ' -f3 "$STACK_DIR/oidc.pid" 2>/dev/null || true
  else
    echo "$OIDC_TLS_PORT"
  fi
}

svc_ready() {
  local svc="$1" port="$2"
  case "$svc" in
    moto) http_ok "http://127.0.0.1:$port/moto-api/" 3 ;;
    alertmanager) http_ok "http://127.0.0.1:$port/-/ready" 2 ;;
    oidc)
      local tls_port
      tls_port="$(oidc_tls_port)"
      http_ok "http://127.0.0.1:$port/.well-known/openid-configuration" 2 \
        && { [ -z "$tls_port" ] || port_open "$tls_port"; }
      ;;
    redis)
      if command -v redis-cli >/dev/null 2>&1; then
        [ "$(redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null)" = PONG ]
      else
        local reply
        reply="$(exec 3<>"/dev/tcp/127.0.0.1/$port" && printf 'PING\r\n' >&3 && timeout 2 head -c 7 <&3)" 2>/dev/null || return 1
        [[ "$reply" == "+PONG"* ]]
      fi
      ;;
    postgres) "$(pg_bindir)/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2 ;;
  esac
}

svc_log() {
  if [ "$1" = postgres ]; then
    echo "$(pg_home)/postgres.log"
  else
    echo "$STACK_DIR/$1.log"
  fi
}

record_started() {
  local svc="$1"
  [ -n "$STARTED_FILE" ] || return 0
  grep -qx "$svc" "$STARTED_FILE" 2>/dev/null || echo "$svc" >>"$STARTED_FILE"
}

# ------------------------------------------------------------ postgres ---

# .local/stack/pg must be reachable by the postgres OS user and its socket
# path short enough (108 bytes); otherwise it links to a folder in /var/tmp.
pg_prepare_home() {
  if [ -L "$PG_HOME_LINK" ] && [ ! -d "$PG_HOME_LINK" ]; then
    rm -f "$PG_HOME_LINK"
  fi
  [ -d "$PG_HOME_LINK" ] && return 0
  mkdir -p "$PG_HOME_LINK"
  is_root && chown postgres:postgres "$PG_HOME_LINK"
  chmod 700 "$PG_HOME_LINK"
  local sock_path="$PG_HOME_LINK/run/.s.PGSQL.$PG_PORT"
  if ! as_pg test -w "$PG_HOME_LINK" 2>/dev/null || [ "${#sock_path}" -gt 100 ]; then
    rmdir "$PG_HOME_LINK"
    local alt
    alt="/var/tmp/blindspotx-pg-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)"
    say "postgres: $PG_HOME_LINK is not usable by the postgres user (or too long a path); using $alt"
    mkdir -p "$alt"
    is_root && chown postgres:postgres "$alt"
    chmod 700 "$alt"
    ln -s "$alt" "$PG_HOME_LINK"
  fi
}

pg_init() {
  local home pgbin
  home="$(pg_home)"
  pgbin="$(pg_bindir)"
  [ -f "$home/data/PG_VERSION" ] && return 0
  say "postgres: initdb $home/data"
  as_pg mkdir -p "$home/run"
  as_pg "$pgbin/initdb" -D "$home/data" -U postgres -E UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 >"$STACK_DIR/initdb.log" 2>&1 \
    || { tail -n 20 "$STACK_DIR/initdb.log" >&2; die "postgres: initdb failed (log: $STACK_DIR/initdb.log)"; }
  # Throwaway local data: durability off for speed.
  as_pg tee -a "$home/data/postgresql.conf" >/dev/null <<'EOF'

# --- scripts/stack.sh (local throwaway cluster) ---
listen_addresses = '127.0.0.1'
unix_socket_permissions = 0700
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 100
log_min_messages = warning
EOF
}

pg_password() {
  if [ ! -s "$PG_PASSWORD_FILE" ]; then
    (umask 077 && od -An -tx1 -N16 /dev/urandom | tr -d ' \n' >"$PG_PASSWORD_FILE")
  fi
  chmod 600 "$PG_PASSWORD_FILE"
  cat "$PG_PASSWORD_FILE"
}

pg_start() {
  local home pgbin
  home="$(pg_home)"
  pgbin="$(pg_bindir)"
  echo "$PG_PORT" >"$STACK_DIR/postgres.port"
  as_pg mkdir -p "$home/run"
  as_pg "$pgbin/pg_ctl" -D "$home/data" -l "$home/postgres.log" -w -t "$READY_TIMEOUT" \
    -o "-p $PG_PORT -k '$home/run' -h 127.0.0.1" start >/dev/null 9>&- \
    || { tail -n 20 "$home/postgres.log" >&2 2>/dev/null; return 1; }
}

# Role, database and seed data; run at every `up` (idempotent, and adds a
# fresh drift_scans row for trying DRIFT_SOURCE=sql locally; the default
# drift source is the drift job's log records, which the demo sends).
pg_setup() {
  local home pgbin pw port
  home="$(pg_home)"
  pgbin="$(pg_bindir)"
  pw="$(pg_password)"
  port="$(svc_port postgres)"
  PGOPTIONS="-c client_min_messages=warning" as_pg "$pgbin/psql" -X -q -h "$home/run" -p "$port" -U postgres -d postgres \
    -v ON_ERROR_STOP=1 >/dev/null <<EOF || die "postgres: creating role/database failed"
SELECT 'CREATE ROLE blindspotx LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'blindspotx') \gexec
ALTER ROLE blindspotx WITH LOGIN PASSWORD '$pw';
GRANT pg_monitor TO blindspotx;
SELECT 'CREATE ROLE blindspotx_responder LOGIN' WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'blindspotx_responder') \gexec
ALTER ROLE blindspotx_responder WITH LOGIN PASSWORD '$pw';
SELECT 'CREATE DATABASE blindspotx OWNER blindspotx' WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'blindspotx') \gexec
EOF
  PGPASSWORD="$pw" PGOPTIONS="-c client_min_messages=warning" "$pgbin/psql" -X -q -h 127.0.0.1 -p "$port" -U blindspotx -d blindspotx \
    -v ON_ERROR_STOP=1 -f "$ROOT/scripts/seed.sql" >/dev/null \
    || die "postgres: loading scripts/seed.sql failed"
}

# ----------------------------------------------------------------- tls ---

# Is $1 a certificate that is still valid $2 seconds from now?
cert_valid_for() {
  openssl x509 -noout -checkend "$2" -in "$1" >/dev/null 2>&1
}

# Do certificate $1 and private key $2 belong together?
cert_key_match() {
  local a b
  a="$(openssl x509 -noout -pubkey -in "$1" 2>/dev/null)" || return 1
  b="$(openssl pkey -pubout -in "$2" 2>/dev/null)" || return 1
  [ -n "$a" ] && [ "$a" = "$b" ]
}

# openssl "${@:2}", quiet; on failure show its messages and die with "$1".
# Standard input is passed on (the -config / -extfile text).
openssl_or_die() {
  local what="$1" err
  shift
  err="$(openssl "$@" 2>&1 >/dev/null)" || { printf '%s\n' "$err" >&2; die "tls: $what failed"; }
}

# An empty file of mode 600 at $1 (openssl then writes the key into it).
private_file() {
  rm -f "$1"
  (umask 077 && : >"$1")
}

random_serial() {
  echo "0x$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
}

# .local/stack/tls: a local CA (ca.pem, ca.key) and a server certificate for
# localhost and 127.0.0.1 signed by it (server.pem, server.key), made with
# the openssl CLI, keys mode 600. Kept while usable: the server certificate
# is made again when it expires within SERVER_RENEW_DAYS (or does not match
# its key or the CA), the CA when it would expire within SERVER_DAYS (or does
# not match its key). Quiet when nothing needs doing.
tls_ensure() {
  command -v openssl >/dev/null 2>&1 || die "openssl not found: run scripts/bootstrap.sh"
  mkdir -p "$TLS_DIR"
  local ca="$TLS_DIR/ca.pem" ca_key="$TLS_DIR/ca.key"
  local crt="$TLS_DIR/server.pem" key="$TLS_DIR/server.key" csr="$TLS_DIR/server.csr"
  local new_ca=0
  if ! cert_valid_for "$ca" $((SERVER_DAYS * 86400)) || ! cert_key_match "$ca" "$ca_key"; then
    say "tls: creating a local CA in $TLS_DIR (valid $CA_DAYS days)"
    private_file "$ca_key.tmp"
    openssl_or_die "creating the CA" req -x509 -new -config /dev/stdin \
      -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$ca_key.tmp" \
      -sha256 -days "$CA_DAYS" -set_serial "$(random_serial)" \
      -subj "/O=BlindspotX local stack/CN=BlindspotX local stack CA" -out "$ca.tmp" <<'EOF'
[req]
distinguished_name = dn
x509_extensions = ext
[dn]
[ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
    chmod 644 "$ca.tmp"
    mv -f "$ca_key.tmp" "$ca_key"
    mv -f "$ca.tmp" "$ca"
    new_ca=1
  fi
  if [ "$new_ca" -eq 1 ] \
    || ! cert_valid_for "$crt" $((SERVER_RENEW_DAYS * 86400)) \
    || ! cert_key_match "$crt" "$key" \
    || ! openssl verify -CAfile "$ca" "$crt" >/dev/null 2>&1; then
    say "tls: creating a server certificate for localhost (valid $SERVER_DAYS days)"
    private_file "$key.tmp"
    openssl_or_die "creating the server key" req -new -config /dev/stdin \
      -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout "$key.tmp" \
      -subj "/O=BlindspotX local stack/CN=localhost" -out "$csr" <<'EOF'
[req]
distinguished_name = dn
[dn]
EOF
    openssl_or_die "signing the server certificate" x509 -req -in "$csr" -extfile /dev/stdin \
      -CA "$ca" -CAkey "$ca_key" -set_serial "$(random_serial)" \
      -sha256 -days "$SERVER_DAYS" -out "$crt.tmp" <<'EOF'
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
EOF
    rm -f "$csr"
    chmod 644 "$crt.tmp"
    mv -f "$key.tmp" "$key"
    mv -f "$crt.tmp" "$crt"
  fi
  chmod 600 "$ca_key" "$key"
}

# --------------------------------------------------------- start / stop ---

start_svc() {
  local svc="$1" port
  port="$(svc_conf_port "$svc")"
  record_started "$svc"
  case "$svc" in
    postgres)
      pg_start || return 1
      ;;
    redis)
      mkdir -p "$STACK_DIR/redis"
      setsid redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no \
        --maxmemory 64mb --daemonize no --dir "$STACK_DIR/redis" --logfile '' \
        </dev/null >>"$STACK_DIR/redis.log" 2>&1 9>&- &
      echo "$! $port" >"$STACK_DIR/redis.pid"
      ;;
    moto)
      setsid "$VENV/bin/python" "$ROOT/scripts/moto_server.py" --host 127.0.0.1 --port "$port" \
        </dev/null >>"$STACK_DIR/moto.log" 2>&1 9>&- &
      echo "$! $port" >"$STACK_DIR/moto.pid"
      ;;
    alertmanager)
      # Our own instance, not Debian's service: loopback only, clustering
      # off (it would listen on every interface), a receiver that sends
      # nothing (the tests read what it holds through its API).
      mkdir -p "$AM_DIR/data"
      cat >"$AM_DIR/alertmanager.yml" <<'EOF'
# Written by scripts/stack.sh: the local stack's Alertmanager notifies
# nobody; the notifier's alertmanager channel and amtool talk to its API.
route:
  receiver: local-null
  group_by: [alertname]
receivers:
  - name: local-null
EOF
      setsid alertmanager --config.file="$AM_DIR/alertmanager.yml" --storage.path="$AM_DIR/data" \
        --web.listen-address="127.0.0.1:$port" --cluster.listen-address= \
        </dev/null >>"$STACK_DIR/alertmanager.log" 2>&1 9>&- &
      echo "$! $port" >"$STACK_DIR/alertmanager.pid"
      ;;
    oidc)
      setsid "$VENV/bin/python" "$ROOT/scripts/oidc_fixture.py" --host 127.0.0.1 --port "$port" \
        --tls-port "$OIDC_TLS_PORT" --tls-cert "$TLS_DIR/server.pem" --tls-key "$TLS_DIR/server.key" \
        </dev/null >>"$STACK_DIR/oidc.log" 2>&1 9>&- &
      echo "$! $port $OIDC_TLS_PORT" >"$STACK_DIR/oidc.pid"
      ;;
  esac
}

stop_svc() {
  local svc="$1" pid
  pid="$(svc_pid "$svc")"
  if [ -z "$pid" ]; then
    say "$svc: not running"
    [ "$svc" = postgres ] || rm -f "$STACK_DIR/$svc.pid"
    return 0
  fi
  if [ "$svc" = postgres ]; then
    as_pg "$(pg_bindir)/pg_ctl" -D "$(pg_home)/data" -m fast -w -t 60 stop >/dev/null \
      || stop_pid "$pid" pid 30
  else
    stop_pid "$pid" pid 10
    rm -f "$STACK_DIR/$svc.pid"
  fi
  say "$svc: stopped (pid $pid)"
}

wait_ready() {
  local svc="$1" port="$2" pid="$3" i
  for ((i = 0; i < READY_TIMEOUT * 4; i++)); do
    if svc_ready "$svc" "$port"; then
      return 0
    fi
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      break
    fi
    sleep 0.25
  done
  if [ "$svc" = oidc ] && [ -n "$(oidc_tls_port)" ]; then
    port="$port (or TLS :$(oidc_tls_port))"
  fi
  say "$svc: not answering on 127.0.0.1:$port; last lines of $(svc_log "$svc"):"
  tail -n 20 "$(svc_log "$svc")" >&2 2>/dev/null || true
  return 1
}

lock_stack() {
  mkdir -p "$STACK_DIR"
  exec 9>"$STACK_DIR/.lock"
  flock -w 300 9 || die "another scripts/stack.sh holds $STACK_DIR/.lock"
}

# ------------------------------------------------------------- commands ---

cmd_up() {
  [ -x "$VENV/bin/python" ] || die ".venv missing: run scripts/bootstrap.sh (make bootstrap) first"
  command -v redis-server >/dev/null 2>&1 || die "redis-server not found: run scripts/bootstrap.sh"
  command -v alertmanager >/dev/null 2>&1 || die "alertmanager not found: run scripts/bootstrap.sh"
  pg_bindir >/dev/null || die "Postgres binaries not found: run scripts/bootstrap.sh"
  lock_stack
  if [ -n "$STARTED_FILE" ]; then
    mkdir -p "$(dirname "$STARTED_FILE")"
    touch "$STARTED_FILE"
  fi

  # 1. Classify every service before starting anything.
  local svc pid port owner to_start=() running=()
  for svc in "${SERVICES[@]}"; do
    pid="$(svc_pid "$svc")"
    port="$(svc_conf_port "$svc")"
    if [ -n "$pid" ]; then
      local rport
      rport="$(svc_port "$svc")"
      if [ "$rport" != "$port" ]; then
        if [ -n "$(svc_port_set "$svc")" ]; then
          die "$svc: already running from this checkout on port $rport (pid $pid), not $(svc_var "$svc")=$port; run scripts/stack.sh down first"
        fi
        say "$svc: using the running instance on port $rport (not the default $port)"
      fi
      if [ "$svc" = oidc ]; then
        rport="$(oidc_tls_port)"
        if [ -z "$rport" ]; then
          say "oidc: the running instance (pid $pid) has no TLS endpoint; scripts/stack.sh down, then up, to get one"
        elif [ "$rport" != "$OIDC_TLS_PORT" ]; then
          if [ -n "$OIDC_TLS_PORT_SET" ]; then
            die "oidc: already running from this checkout with TLS on port $rport (pid $pid), not OIDC_TLS_PORT=$OIDC_TLS_PORT; run scripts/stack.sh down first"
          fi
          say "oidc: using the running instance with TLS on port $rport (not the default $OIDC_TLS_PORT)"
        fi
      fi
      running+=("$svc")
    elif port_open "$port"; then
      owner="$(port_owner "$port")"
      die "$svc: port 127.0.0.1:$port is taken by another process${owner:+ ($owner)}; stop it or set $(svc_var "$svc") to a free port"
    elif [ "$svc" = oidc ] && [ "$OIDC_TLS_PORT" = "$port" ]; then
      die "oidc: OIDC_PORT and OIDC_TLS_PORT are both $port; set them to different ports"
    elif [ "$svc" = oidc ] && port_open "$OIDC_TLS_PORT"; then
      owner="$(port_owner "$OIDC_TLS_PORT")"
      die "$svc: port 127.0.0.1:$OIDC_TLS_PORT is taken by another process${owner:+ ($owner)}; stop it or set OIDC_TLS_PORT to a free port"
    else
      to_start+=("$svc")
    fi
  done

  # 2. Start what is missing (Postgres synchronously, the rest in the
  #    background), then wait for everything to answer.
  for svc in "${to_start[@]}"; do
    if [ "$svc" = postgres ]; then
      pg_prepare_home
      pg_init
    fi
    if [ "$svc" = oidc ]; then
      tls_ensure
      say "$svc: starting on 127.0.0.1:$(svc_conf_port "$svc") (TLS on :$OIDC_TLS_PORT)"
    else
      say "$svc: starting on 127.0.0.1:$(svc_conf_port "$svc")"
    fi
    if ! start_svc "$svc"; then
      stop_svc "$svc" >/dev/null 2>&1 || true
      die "$svc: failed to start (log: $(svc_log "$svc"))"
    fi
  done
  for svc in "${SERVICES[@]}"; do
    pid="$(svc_pid "$svc")"
    port="$(svc_port "$svc")"
    if ! wait_ready "$svc" "$port" "$pid"; then
      if [[ " ${to_start[*]} " == *" $svc "* ]]; then
        stop_svc "$svc" >/dev/null 2>&1 || true
      fi
      die "$svc: did not become ready within ${READY_TIMEOUT}s"
    fi
    if [ "$svc" = oidc ] && [ -n "$(oidc_tls_port)" ]; then
      port="$port (TLS on :$(oidc_tls_port))"
    fi
    if [[ " ${running[*]} " == *" $svc "* ]]; then
      say "$svc: already running (pid $pid) on 127.0.0.1:$port"
    else
      say "$svc: ready (pid $(svc_pid "$svc")) on 127.0.0.1:$port"
    fi
  done
  pg_setup
}

cmd_down() {
  lock_stack
  local svc list=()
  if [ -n "$STARTED_FILE" ]; then
    if [ ! -e "$STARTED_FILE" ]; then
      say "nothing to stop ($STARTED_FILE does not exist)"
      return 0
    fi
    # Reverse start order: clients before servers they might use.
    for svc in alertmanager oidc moto redis postgres; do
      if grep -qx "$svc" "$STARTED_FILE"; then
        list+=("$svc")
      fi
    done
  else
    list=(alertmanager oidc moto redis postgres)
  fi
  if [ "${#list[@]}" -eq 0 ]; then
    say "nothing to stop ($STARTED_FILE lists no service)"
  fi
  for svc in "${list[@]}"; do
    stop_svc "$svc"
  done
  if [ -n "$STARTED_FILE" ]; then
    rm -f "$STARTED_FILE"
  fi
}

cmd_env() {
  [ -s "$PG_PASSWORD_FILE" ] || die "no $PG_PASSWORD_FILE yet: run scripts/stack.sh up first"
  local pw redis_bin
  pw="$(cat "$PG_PASSWORD_FILE")"
  redis_bin="$(command -v redis-server || true)"
  local kv=(
    "AWS_ENDPOINT_URL=http://127.0.0.1:$(svc_port moto)"
    "AWS_REGION=us-east-1"
    "AWS_DEFAULT_REGION=us-east-1"
    "AWS_ACCESS_KEY_ID=test"
    "AWS_SECRET_ACCESS_KEY=test"
    "AWS_EC2_METADATA_DISABLED=true"
    "DATABASE_URL=postgres://blindspotx:$pw@127.0.0.1:$(svc_port postgres)/blindspotx"
    "BLOCKLIST_DATABASE_URL=postgres://blindspotx_responder:$pw@127.0.0.1:$(svc_port postgres)/blindspotx"
    "REDIS_URL=redis://127.0.0.1:$(svc_port redis)"
    "OIDC_ISSUER=http://127.0.0.1:$(svc_port oidc)"
    "REDIS_SERVER_BIN=$redis_bin"
    "TABLE_NAME=$TABLE_NAME_DEFAULT"
    "INCIDENTS_TOPIC_NAME=$TOPIC_NAME_DEFAULT"
    "INCIDENTS_TOPIC_ARN=arn:aws:sns:us-east-1:123456789012:$TOPIC_NAME_DEFAULT"
    "ALERTMANAGER_URL=http://127.0.0.1:$(svc_port alertmanager)"
  )
  # The certificates probe checks the oidc fixture's HTTPS endpoint (unless
  # the running fixture has none, or there is no CA yet).
  local tls_port
  tls_port="$(oidc_tls_port)"
  if [ -n "$tls_port" ] && [ -s "$TLS_DIR/ca.pem" ]; then
    kv+=(
      "CERT_ENDPOINTS=localhost:$tls_port"
      "CERT_EXTRA_CA_FILE=$TLS_DIR/ca.pem"
    )
  fi
  local line
  for line in "${kv[@]}"; do
    printf 'export %s=%q\n' "${line%%=*}" "${line#*=}"
  done
}

cmd_status() {
  local svc pid port all=0 owner tls
  for svc in "${SERVICES[@]}"; do
    pid="$(svc_pid "$svc")"
    port="$(svc_port "$svc")"
    tls=""
    if [ "$svc" = oidc ] && [ -n "$(oidc_tls_port)" ]; then
      tls=", https 127.0.0.1:$(oidc_tls_port)"
    fi
    if [ -n "$pid" ] && svc_ready "$svc" "$port"; then
      printf '%-12s running  pid %-7s 127.0.0.1:%s%s\n' "$svc" "$pid" "$port" "$tls"
    elif [ -n "$pid" ]; then
      printf '%-12s starting pid %-7s 127.0.0.1:%s%s (not answering yet)\n' "$svc" "$pid" "$port" "$tls"
      all=3
    elif port_open "$port"; then
      owner="$(port_owner "$port")"
      printf '%-12s stopped  (port %s taken by another process%s)\n' "$svc" "$port" "${owner:+: $owner}"
      all=3
    elif [ "$svc" = oidc ] && port_open "$OIDC_TLS_PORT"; then
      owner="$(port_owner "$OIDC_TLS_PORT")"
      printf '%-12s stopped  (port %s taken by another process%s)\n' "$svc" "$OIDC_TLS_PORT" "${owner:+: $owner}"
      all=3
    else
      printf '%-12s stopped\n' "$svc"
      all=3
    fi
  done
  return "$all"
}

# ----------------------------------------------------------------- main ---

[ $# -ge 1 ] || usage
CMD="$1"
shift
STARTED_FILE=""
while [ $# -gt 0 ]; do
  case "$1" in
    --started-file) [ $# -ge 2 ] || usage; STARTED_FILE="$2"; shift 2 ;;
    --started-file=*) STARTED_FILE="${1#*=}"; shift ;;
    -h|--help) usage ;;
    *) say "unknown argument: $1"; usage ;;
  esac
done
if [ -n "$STARTED_FILE" ]; then
  case "$STARTED_FILE" in
    /*) ;;
    *) STARTED_FILE="$PWD/$STARTED_FILE" ;;
  esac
fi

case "$CMD" in
  up) cmd_up ;;
  down) cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  *) usage ;;
esac
