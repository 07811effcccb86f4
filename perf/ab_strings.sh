#!/usr/bin/env bash
# perf/ab_strings.sh — SET/GET server CPU per request of two darter binaries, A/B.
#
#   perf/ab_strings.sh OLD_BIN NEW_BIN          (e.g. a saved binary of main vs target/release/darter)
#
# Each run starts a fresh `OLD_BIN|NEW_BIN --proactor_threads 1` pinned to SERVER_CPU
# (default 1) and drives it with `redis-benchmark -c 50 -d 32 -r 100000` pinned to
# CLIENT_CPU (default 0), old and new interleaved, REPS runs each (default 3), for
# P in {16, 1} and SET then GET (GET runs follow 300k SETs, so most GETs hit).
# CPU per request = utime+stime of the server (/proc/PID/stat) over the run / requests,
# in microseconds. The loaded client core caps rps, so CPU per request is the number to
# compare; on a noisy VM compare the minima. Prints a markdown table.
set -euo pipefail
OLD="$(realpath "$1")"; NEW="$(realpath "$2")"
SERVER_CPU="${SERVER_CPU:-1}"; CLIENT_CPU="${CLIENT_CPU:-0}"; REPS="${REPS:-3}"
PORT="${PORT:-16390}"
N16="${N16:-2000000}"; N1="${N1:-200000}"
TICK=$(getconf CLK_TCK)
pid=""
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# one_run BIN TEST P N -> prints µs of server CPU per request
one_run() {
  local bin="$1" test="$2" p="$3" n="$4"
  local dir; dir=$(mktemp -d)
  (cd "$dir" && exec taskset -c "$SERVER_CPU" "$bin" --port "$PORT" --proactor_threads 1 >/dev/null 2>&1) &
  pid=$!
  for _ in $(seq 100); do redis-cli -p "$PORT" ping >/dev/null 2>&1 && break; sleep 0.05; done
  if [ "$test" = get ]; then
    timeout 120 taskset -c "$CLIENT_CPU" redis-benchmark -p "$PORT" -t set -c 50 -d 32 -r 100000 -n 300000 -P 16 -q >/dev/null
  fi
  local t0; t0=$(cpu_ticks "$pid")
  timeout 300 taskset -c "$CLIENT_CPU" redis-benchmark -p "$PORT" -t "$test" -c 50 -d 32 -r 100000 -n "$n" -P "$p" -q >/dev/null
  local t1; t1=$(cpu_ticks "$pid")
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
  rm -rf "$dir"
  awk -v t="$((t1 - t0))" -v hz="$TICK" -v n="$n" 'BEGIN { printf "%.3f", t / hz * 1e6 / n }'
}

echo "| test | P | old runs (µs/req) | new runs (µs/req) | old min | new min |"
echo "|---|---:|---|---|---:|---:|"
for p in 16 1; do
  n=$([ "$p" = 16 ] && echo "$N16" || echo "$N1")
  for test in set get; do
    olds=(); news=()
    for _ in $(seq "$REPS"); do
      olds+=("$(one_run "$OLD" "$test" "$p" "$n")")
      news+=("$(one_run "$NEW" "$test" "$p" "$n")")
    done
    omin=$(printf '%s\n' "${olds[@]}" | sort -g | head -1)
    nmin=$(printf '%s\n' "${news[@]}" | sort -g | head -1)
    echo "| ${test^^} | $p | $(IFS=/; echo "${olds[*]}" | sed 's#/# / #g') | $(IFS=/; echo "${news[*]}" | sed 's#/# / #g') | $omin | $nmin |"
  done
done
