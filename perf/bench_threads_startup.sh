#!/usr/bin/env bash
# perf/bench_threads_startup.sh — start-up cost of Darter by thread count (issue 17, item 5).
#
# For each N in THREADS: start `darter --proactor_threads N` (no data), time until the
# first PING is answered, then read INFO memory (used_memory, used_memory_startup,
# used_memory_overhead) and the process's RSS (VmRSS) and kill it. A server that does
# not answer within TIMEOUT_S is reported as such (with its RSS at that moment).
# On this 2-core machine N threads share 2 cores, so N = 256 stands in for a 256-core
# host's default (one thread per core), slower here than there.
#
# Environment: THREADS ("1 16 128 256 1024"), TIMEOUT_S (30), DARTER_BIN
# (./target/release/darter), PORT (16396). Prints a markdown table to stdout.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
THREADS="${THREADS:-1 16 128 256 1024}"
TIMEOUT_S="${TIMEOUT_S:-30}"
DARTER_BIN="${DARTER_BIN:-./target/release/darter}"
PORT="${PORT:-16396}"
TMP="$ROOT/perf/tmp"
mkdir -p "$TMP"
command -v redis-cli >/dev/null || { echo "bench_threads_startup: redis-cli not found" >&2; exit 1; }
if [ "$DARTER_BIN" = ./target/release/darter ]; then cargo build --release --bins >&2; fi

pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; true' EXIT INT TERM
field() { redis-cli -p "$PORT" info memory | tr -d '\r' | awk -F: -v f="$1" '$1 == f {print $2}'; }
mb() { awk -v b="$1" 'BEGIN { if (b == "") print "-"; else printf "%.1f", b / 1e6 }'; }

echo "- darter $(git rev-parse --short HEAD) ($DARTER_BIN), $(nproc) cores, kernel $(uname -r)"
echo
echo "| threads | start until PING (s) | used_memory MB | used_memory_startup MB | used_memory_overhead MB | RSS MB |"
echo "|---:|---:|---:|---:|---:|---:|"
for n in $THREADS; do
  t0=$(date +%s%N)
  "$DARTER_BIN" --port "$PORT" --bind 127.0.0.1 --proactor_threads "$n" --dir "$TMP" >"$TMP/threads-$n.log" 2>&1 &
  pid=$!
  up=""
  while [ $(( ($(date +%s%N) - t0) / 1000000000 )) -lt "$TIMEOUT_S" ]; do
    if [ "$(timeout 2 redis-cli -p "$PORT" ping 2>/dev/null)" = PONG ]; then up=1; break; fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.02
  done
  t1=$(date +%s%N)
  rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status" 2>/dev/null || echo "")
  if [ -n "$up" ]; then
    secs=$(awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1e9 }')
    sleep 1 # let every thread finish setting up (used_memory_startup is set by the last)
    rss_kb=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
    echo "| $n | $secs | $(mb "$(field used_memory)") | $(mb "$(field used_memory_startup)") | $(mb "$(field used_memory_overhead)") | $(mb $((rss_kb * 1000))) |"
  else
    echo "| $n | no answer in ${TIMEOUT_S} s | - | - | - | $(mb $(( ${rss_kb:-0} * 1000 ))) |"
  fi
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  pid=""
done
