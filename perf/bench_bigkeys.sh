#!/usr/bin/env bash
# perf/bench_bigkeys.sh — GET over a large keyspace (default 10M keys): Darter vs Redis.
#
#   core SERVER_CPU (1): darter --proactor_threads 1   or   redis-server (no persistence)
#   core CLIENT_CPU (0): redis-benchmark -t set -r KEYS -n 3*KEYS -P 16 -d 32 (load),
#                        then -t get -r KEYS at -P 1 and -P 16, REPS times each
#
# One server at a time, loaded by random SETs (3*KEYS of them cover ~95% of the key
# range), then timed. Reports dbsize and RSS after the load, and per GET run the
# redis-benchmark CSV line and the server's CPU per request (utime+stime from
# /proc/PID/stat over the run), the fair figure when the client saturates its core.
# This is where the table's lookups run far outside the caches (perf/results/
# dash-lookup-*.md measure the table alone). Needs redis-server, redis-tools.
#
# Environment: KEYS (10000000), REPS (3), DARTER_PORT/REDIS_PORT (16391/16392),
# SERVER_CPU/CLIENT_CPU (1/0), N_P1/N_P16 (200000/3000000). Prints to stdout.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
KEYS="${KEYS:-10000000}"
REPS="${REPS:-3}"
DARTER_PORT="${DARTER_PORT:-16391}"
REDIS_PORT="${REDIS_PORT:-16392}"
SERVER_CPU="${SERVER_CPU:-1}"
CLIENT_CPU="${CLIENT_CPU:-0}"
N_P1="${N_P1:-200000}"
N_P16="${N_P16:-3000000}"
TMP="$ROOT/perf/tmp"
mkdir -p "$TMP"
for tool in redis-server redis-cli redis-benchmark taskset timeout; do
  command -v "$tool" >/dev/null || { echo "bench_bigkeys: $tool not found (apt-get install -y redis-server redis-tools)" >&2; exit 1; }
done
cargo build --release >&2

pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; true' EXIT INT TERM
cpu_ticks() { sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'; }
HZ="$(getconf CLK_TCK)"

echo "- keys: $KEYS (random SET load of 3x that many, 32-byte values); server on CPU $SERVER_CPU, redis-benchmark on CPU $CLIENT_CPU, -c 50"
echo "- machine: $(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo), kernel $(uname -r); darter $(git rev-parse --short HEAD), $(redis-server --version | cut -d' ' -f1-3)"
echo
echo "| server | P | rep | rps | p50 ms | p99 ms | CPU us/req |"
echo "|---|---|---|---:|---:|---:|---:|"
summary=""
for srv in darter redis; do
  if [ "$srv" = darter ]; then
    port="$DARTER_PORT"
    taskset -c "$SERVER_CPU" ./target/release/darter --port "$port" --proactor_threads 1 --dir "$TMP" >"$TMP/bigkeys-darter.log" 2>&1 &
  else
    port="$REDIS_PORT"
    taskset -c "$SERVER_CPU" redis-server --port "$port" --save '' --appendonly no --dir "$TMP" >"$TMP/bigkeys-redis.log" 2>&1 &
  fi
  pid=$!
  for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  taskset -c "$CLIENT_CPU" timeout 600 redis-benchmark -p "$port" -t set -r "$KEYS" -n $((KEYS * 3)) -P 16 -c 50 -d 32 -q >/dev/null 2>&1
  summary+="- $srv: dbsize $(redis-cli -p "$port" dbsize), RSS $(awk '/VmRSS/ {print $2}' "/proc/$pid/status") kB"$'\n'
  for rep in $(seq "$REPS"); do
    for P in 1 16; do
      n=$([ "$P" = 1 ] && echo "$N_P1" || echo "$N_P16")
      c0="$(cpu_ticks "$pid")"
      line="$(taskset -c "$CLIENT_CPU" timeout 300 redis-benchmark -p "$port" -t get -r "$KEYS" -n "$n" -P "$P" -c 50 --csv 2>/dev/null | tail -1)"
      c1="$(cpu_ticks "$pid")"
      # "GET","rps","avg","min","p50","p95","p99","max"
      echo "$line" | tr -d '"' | awk -F, -v s="$srv" -v P="$P" -v r="$rep" -v c0="$c0" -v c1="$c1" -v n="$n" -v hz="$HZ" \
        '{printf "| %s | %s | %s | %.0f | %s | %s | %.3f |\n", s, P, r, $2, $5, $7, (c1 - c0) / hz * 1e6 / n}'
    done
  done
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
done
echo
printf '%s' "$summary"
