#!/usr/bin/env bash
# Replay versus mtail on the same generated corpus, measured in the same run.
#
# Usage: bench/compare-mtail.sh [RECORDS] [SEED]   (default 1000000 20261130)
#
# 1. Generates RECORDS records with ../shared/bench/gen_logs.py (cached under
#    .local/bench/).
# 2. Runs mtail with ../shared/bench/mtail/blindspotx.mtail in one-shot
#    mode, and then `replay --format json` (release build), on that file.
# 3. Prints the wall time, records/s and peak RSS of each, and the ratio.
#
# mtail comes from Debian's package, unpacked into .local/tools without
# installing it, so no mtail daemon is set up.
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

records="${1:-1000000}"
seed="${2:-20261130}"
bench_dir="$ROOT/../shared/bench"
[ -f "$bench_dir/gen_logs.py" ] || die "$bench_dir/gen_logs.py not found (the shared bench directory must sit next to the project)"

if ! command -v mtail >/dev/null 2>&1; then
  tmp="$(mktemp -d)"
  say "extracting mtail from Debian's mtail package"
  (cd "$tmp" && apt-get -qq download mtail >/dev/null 2>&1) || { rm -rf "$tmp"; die "apt-get download mtail failed (run apt-get update?)"; }
  dpkg-deb -x "$tmp"/mtail_*.deb "$tmp/root" || { rm -rf "$tmp"; die "cannot unpack the mtail package"; }
  mkdir -p "$TOOLS_DIR"
  install -m 0755 "$tmp/root/usr/bin/mtail" "$TOOLS_DIR/mtail"
  rm -rf "$tmp"
fi

say "building replay (release)"
cargo build --release -q -p replay
replay="${CARGO_TARGET_DIR:-$ROOT/target}/release/replay"

work="$LOCAL_DIR/bench"
mkdir -p "$work"
corpus="$work/corpus-$records-$seed.log"
if [ ! -s "$corpus" ]; then
  say "generating $records records (seed $seed)"
  python3 "$bench_dir/gen_logs.py" "$records" "$corpus" "$seed"
fi

# Runs a command under GNU time; prints "seconds peak_kib".
measure() {
  local out="$1"
  shift
  /usr/bin/time -f '%e %M' -o "$work/time.txt" "$@" >"$out" 2>"$out.err"
  cat "$work/time.txt"
}

say "mtail --one_shot on $(basename "$corpus")"
read -r mtail_s mtail_kib < <(measure "$work/mtail.json" mtail --one_shot --one_shot_format json \
  --progs "$bench_dir/mtail" --logs "$corpus" --address 127.0.0.1 --port 0 \
  --logtostderr --stderrthreshold ERROR)
say "replay --format json on $(basename "$corpus")"
read -r replay_s replay_kib < <(measure "$work/replay.json" "$replay" --format json "$corpus")

python3 - "$records" "$mtail_s" "$mtail_kib" "$replay_s" "$replay_kib" <<'PY'
import sys
n, ms, mk, rs, rk = int(sys.argv[1]), *map(float, sys.argv[2:])
print(f"records          {n}")
print(f"mtail            {ms:8.2f} s  {n / ms:12,.0f} records/s  peak RSS {mk / 1024:7.1f} MiB")
print(f"replay           {rs:8.2f} s  {n / rs:12,.0f} records/s  peak RSS {rk / 1024:7.1f} MiB")
print(f"replay / mtail   {ms / rs:8.1f}x records/s")
PY
