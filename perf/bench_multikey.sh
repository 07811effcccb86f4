#!/usr/bin/env bash
# perf/bench_multikey.sh — one multi-key command with 10k, 100k, 1M keys: Darter vs Redis.
#
#   Darter: darter --proactor_threads 2 (keys spread over both shards; its threads pin
#           themselves to CPUs 0 and 1), started under taskset -c 0,1
#   Redis:  redis-server 7.0.15 (no persistence) under taskset -c SERVER_CPU (1)
#   client: perf/multikey_client.py under taskset -c CLIENT_CPU (0)
#
# For each size the client runs MSET, MGET, EXISTS, TOUCH, DEL, MSETNX, UNLINK over the
# same N keys, REPS rounds, each command timed alone from the first byte sent to the
# last byte of its reply (the request bytes are built before the clock starts; see the
# client's docstring). The table gives the best round per command, in milliseconds,
# and Darter / Redis. A fresh server per size and kind.
#
# Environment: SIZES ("10000 100000 1000000"), REPS (3), TIMEOUT_S (120: a command
# slower than that is reported as a timeout), DARTER_BIN (./target/release/darter),
# DARTER_PORT/REDIS_PORT (16393/16394), SERVER_CPU/CLIENT_CPU (1/0). Prints to stdout.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
SIZES="${SIZES:-10000 100000 1000000}"
REPS="${REPS:-3}"
TIMEOUT_S="${TIMEOUT_S:-120}"
DARTER_BIN="${DARTER_BIN:-./target/release/darter}"
DARTER_PORT="${DARTER_PORT:-16393}"
REDIS_PORT="${REDIS_PORT:-16394}"
SERVER_CPU="${SERVER_CPU:-1}"
CLIENT_CPU="${CLIENT_CPU:-0}"
TMP="$ROOT/perf/tmp"
mkdir -p "$TMP"
for tool in redis-server redis-cli taskset timeout python3; do
  command -v "$tool" >/dev/null || { echo "bench_multikey: $tool not found" >&2; exit 1; }
done
if [ "$DARTER_BIN" = ./target/release/darter ]; then cargo build --release --bins >&2; fi

pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; true' EXIT INT TERM
raw="$(mktemp)"
load0="$(cut -d' ' -f1 /proc/loadavg)"

for n in $SIZES; do
  for srv in darter redis; do
    if [ "$srv" = darter ]; then
      port="$DARTER_PORT"
      taskset -c 0,1 "$DARTER_BIN" --port "$port" --bind 127.0.0.1 --proactor_threads 2 --dir "$TMP" >"$TMP/multikey-darter.log" 2>&1 &
    else
      port="$REDIS_PORT"
      taskset -c "$SERVER_CPU" redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$TMP" >"$TMP/multikey-redis.log" 2>&1 &
    fi
    pid=$!
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
    # Generous outer bound: REPS rounds of 7 commands, each at most TIMEOUT_S.
    taskset -c "$CLIENT_CPU" timeout $((REPS * 7 * ${TIMEOUT_S%.*} + 120)) \
      python3 perf/multikey_client.py "$port" "$n" "$REPS" "$TIMEOUT_S" 2>"$TMP/multikey-client.err" | sed "s/^/$srv /" >>"$raw" ||
      { echo "bench_multikey: $srv, $n keys: client failed: $(tail -1 "$TMP/multikey-client.err")" >&2; }
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
  done
done

echo "- load average before the run: $load0 (1 min); after: $(cut -d' ' -f1 /proc/loadavg)"
echo "- darter --proactor_threads 2 (CPUs 0,1) vs $(redis-server --version | cut -d' ' -f1-3) (CPU $SERVER_CPU); client on CPU $CLIENT_CPU; best of $REPS rounds"
echo "- machine: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r); darter $(git rev-parse --short HEAD) ($DARTER_BIN)"
echo
echo "| command | keys | Darter ms | Redis ms | Darter / Redis |"
echo "|---|---:|---:|---:|---:|"
awk '
  { key = $2 " " $3
    if (!(key in order)) { order[key] = ++nk; names[nk] = key }
    if ($4 == "timeout") { if (!(($1, key) in best)) best[$1, key] = "timeout" ; next }
    if (!(($1, key) in best) || best[$1, key] == "timeout" || $4 < best[$1, key]) best[$1, key] = $4 }
  END {
    for (i = 1; i <= nk; i++) {
      key = names[i]; split(key, p, " ")
      d = ((("darter", key) in best) ? best["darter", key] : "-")
      r = ((("redis", key) in best) ? best["redis", key] : "-")
      ds = (d == "timeout" || d == "-") ? d : sprintf("%.1f", d * 1000)
      rs = (r == "timeout" || r == "-") ? r : sprintf("%.1f", r * 1000)
      ratio = (d ~ /^[0-9.]+$/ && r ~ /^[0-9.]+$/ && r > 0) ? sprintf("%.2f", d / r) : "-"
      printf "| %s | %s | %s | %s | %s |\n", p[1], p[2], ds, rs, ratio
    }
  }' "$raw"
rm -f "$raw"
