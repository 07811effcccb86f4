#!/usr/bin/env bash
# perf/bench_strings.sh — SET/GET throughput, latency and CPU cost: Darter vs Redis.
#
#   core 1: darter --proactor_threads 1 --port 16379    and   redis-server --port 16380
#   core 0: redis-benchmark -t set|get -c 50 -d 32 -r 100000 -n N -P {1,16} --csv
#
# Method
# - Builds darter in release mode (`cargo build --release`), starts both servers pinned
#   to the same core (SERVER_CPU, default 1) and drives them one at a time from the
#   other core (CLIENT_CPU, default 0), so each server has a core to itself while it
#   is measured.
# - For each pipeline depth P in {1, 16} and each test in {set, get}, the pair is run
#   REPS times (default 2) interleaved: darter, redis, darter, redis. Interleaving
#   spreads drift (thermal, noisy neighbours) over both servers.
# - Each run is one `redis-benchmark ... --csv` invocation (columns "test","rps",
#   "avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms",
#   "p99_latency_ms","max_latency_ms"), wrapped in `timeout 120`.
# - CPU: utime+stime of the server process (all its threads) from /proc/PID/stat
#   before and after each run, divided by the number of requests: microseconds of
#   server CPU per request. This is the fair number when the single benchmark client
#   saturates its own core and caps the rps of both servers.
# - Summary: per server and config, the run with the best rps of the REPS runs is
#   taken; its p50/p99/CPU are reported with it (best-of-N, not median: with 2 runs the
#   median is the mean, and the best run is the one least disturbed by the machine).
#   All runs are listed too. Ratios are Darter/Redis: > 1 is better for rps, < 1 is
#   better for latency and CPU.
# - Writes perf/results/strings-YYYY-MM-DD.md (same day: overwritten; RESULT_FILE
#   overrides) and prints it. Server logs go to perf/tmp/.
#
# Environment
#   DARTER_BIN   binary for the "darter" side (default target/release/darter, built
#                here). If its name contains "redis-server" it is started with Redis
#                arguments — to prove this script with two redis-servers:
#                  DARTER_BIN=$(command -v redis-server) perf/bench_strings.sh
#                When DARTER_BIN is set, nothing is built.
#   DARTER_EXTRA_ARGS  more arguments for darter, split on spaces (e.g.
#                "--maxmemory 10gb" to measure the maxmemory check)
#   REDIS_BIN    oracle binary (default redis-server in PATH)
#   DARTER_PORT / REDIS_PORT   default 16379 / 16380
#   SERVER_CPU / CLIENT_CPU    default 1 / 0
#   N_P1 / N_P16 requests per run at P=1 / P=16 (default 200000 / 2000000)
#   REPS         runs per server and config (default 2)
#   CLIENTS      redis-benchmark -c (default 50)
#
# Servers are always killed on exit (trap on EXIT, INT, TERM).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

DARTER_PORT="${DARTER_PORT:-16379}"
REDIS_PORT="${REDIS_PORT:-16380}"
SERVER_CPU="${SERVER_CPU:-1}"
CLIENT_CPU="${CLIENT_CPU:-0}"
N_P1="${N_P1:-200000}"
N_P16="${N_P16:-2000000}"
REPS="${REPS:-2}"
CLIENTS="${CLIENTS:-50}"
REDIS_BIN="${REDIS_BIN:-redis-server}"
DATE="$(date +%F)"
RESULT_FILE="${RESULT_FILE:-$ROOT/perf/results/strings-$DATE.md}"
TMP="$ROOT/perf/tmp"
mkdir -p "$TMP" "$(dirname "$RESULT_FILE")"

for tool in redis-benchmark redis-cli taskset timeout "$REDIS_BIN"; do
  command -v "$tool" >/dev/null 2>&1 || {
    echo "bench_strings: '$tool' not found (apt-get install -y redis-server redis-tools util-linux coreutils)" >&2
    exit 1
  }
done

if [[ -n "${DARTER_BIN:-}" ]]; then
  echo "bench_strings: DARTER_BIN=$DARTER_BIN (not building)"
else
  echo "bench_strings: cargo build --release"
  cargo build --release
  DARTER_BIN="$ROOT/target/release/darter"
fi
[[ -x "$(command -v "$DARTER_BIN")" ]] || { echo "bench_strings: $DARTER_BIN is not executable" >&2; exit 1; }

DARTER_PID=""
REDIS_PID=""
BENCH_PID=""
cleanup() {
  for pid in $BENCH_PID $DARTER_PID $REDIS_PID; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in $BENCH_PID $DARTER_PID $REDIS_PID; do
    wait "$pid" 2>/dev/null || true
  done
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_in_use() { redis-cli -p "$1" ping >/dev/null 2>&1; }

wait_ready() { # port pid name log
  local i
  for i in $(seq 1 200); do
    if ! kill -0 "$2" 2>/dev/null; then
      echo "bench_strings: $3 exited during startup; log:" >&2
      tail -n 30 "$4" >&2
      exit 1
    fi
    if redis-cli -p "$1" ping 2>/dev/null | grep -q PONG; then return 0; fi
    sleep 0.05
  done
  echo "bench_strings: $3 did not answer PING on port $1 within 10 s; log:" >&2
  tail -n 30 "$4" >&2
  exit 1
}

for p in "$DARTER_PORT" "$REDIS_PORT"; do
  if port_in_use "$p"; then
    echo "bench_strings: something already answers on port $p; stop it or set DARTER_PORT/REDIS_PORT" >&2
    exit 1
  fi
done

# --- start the servers (taskset execs the server, so $! is the server's PID) ---
if [[ "$(basename "$DARTER_BIN")" == *redis-server* ]]; then
  DARTER_ARGS=(--port "$DARTER_PORT" --save "" --appendonly no)
  DARTER_LABEL="darter (really $(basename "$DARTER_BIN"))"
else
  DARTER_ARGS=(--proactor_threads 1 --port "$DARTER_PORT")
  # shellcheck disable=SC2206 # split on spaces on purpose
  [[ -n "${DARTER_EXTRA_ARGS:-}" ]] && DARTER_ARGS+=(${DARTER_EXTRA_ARGS})
  DARTER_LABEL="darter"
fi
taskset -c "$SERVER_CPU" "$DARTER_BIN" "${DARTER_ARGS[@]}" >"$TMP/bench-darter.log" 2>&1 &
DARTER_PID=$!
taskset -c "$SERVER_CPU" "$REDIS_BIN" --port "$REDIS_PORT" --save "" --appendonly no >"$TMP/bench-redis.log" 2>&1 &
REDIS_PID=$!
wait_ready "$DARTER_PORT" "$DARTER_PID" darter "$TMP/bench-darter.log"
wait_ready "$REDIS_PORT" "$REDIS_PID" redis "$TMP/bench-redis.log"

CLK_TCK="$(getconf CLK_TCK)"
cpu_ticks() { # utime+stime of a process; the comm field may hold spaces, so cut after ") "
  sed 's/^.*) //' "/proc/$1/stat" | awk '{print $12 + $13}'
}

RUNS="$TMP/bench-runs.csv"
echo "server,pipeline,test,rep,n,rps,avg_ms,p50_ms,p95_ms,p99_ms,max_ms,cpu_us_per_req" >"$RUNS"
FAILED=0

run_one() { # server port pid P test rep n
  local server=$1 port=$2 pid=$3 P=$4 test=$5 rep=$6 n=$7
  local out="$TMP/bench-$server-P$P-$test-$rep.csv"
  local before after
  before=$(cpu_ticks "$pid")
  # In the background + `wait`, so that INT/TERM run the trap at once (bash defers
  # traps until a foreground child exits).
  timeout 120 taskset -c "$CLIENT_CPU" redis-benchmark -p "$port" -t "$test" -c "$CLIENTS" -d 32 \
    -r 100000 -n "$n" -P "$P" --csv >"$out" 2>"$out.err" &
  BENCH_PID=$!
  local rc=0
  wait "$BENCH_PID" || rc=$?
  BENCH_PID=""
  if [[ $rc != 0 ]]; then
    echo "bench_strings: redis-benchmark against $server (P=$P $test rep $rep) failed or timed out" >&2
    tail -n 5 "$out.err" >&2 || true
    FAILED=1
    echo "$server,$P,$test,$rep,$n,,,,,,," >>"$RUNS"
  else
    after=$(cpu_ticks "$pid")
    # last CSV line: "SET","rps","avg","min","p50","p95","p99","max"
    tail -n 1 "$out" | tr -d '"\r' | awk -F, -v s="$server" -v P="$P" -v t="$test" -v r="$rep" -v n="$n" \
      -v dt="$((after - before))" -v hz="$CLK_TCK" \
      '{ printf "%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%.3f\n", s, P, t, r, n, $2, $3, $5, $6, $7, $8, dt / hz * 1e6 / n }' >>"$RUNS"
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "bench_strings: $server died during P=$P $test; log tail:" >&2
    tail -n 30 "$TMP/bench-$server.log" >&2
    exit 1
  fi
  tail -n 1 "$RUNS" | awk -F, '{ printf "  %-6s P=%-2s %-3s rep %s: %10s rps  p50 %6s ms  p99 %6s ms  cpu %7s us/req\n", $1, $2, $3, $4, $6, $8, $10, $12 }'
}

for P in 1 16; do
  if [[ $P == 1 ]]; then N=$N_P1; else N=$N_P16; fi
  for test in set get; do
    for rep in $(seq 1 "$REPS"); do
      run_one darter "$DARTER_PORT" "$DARTER_PID" "$P" "$test" "$rep" "$N"
      run_one redis "$REDIS_PORT" "$REDIS_PID" "$P" "$test" "$rep" "$N"
    done
  done
done

# --- summary ---
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
DIRTY="$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' (dirty tree)' || true)"
CPU_MODEL="$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
{
  echo "# Strings benchmark — $DATE"
  echo
  echo "- darter: \`$DARTER_BIN$(printf ' %q' "${DARTER_ARGS[@]}")\` — $DARTER_LABEL, commit $COMMIT$DIRTY"
  echo "- redis: \`$REDIS_BIN --port $REDIS_PORT --save '' --appendonly no\` — $("$REDIS_BIN" --version | awk '{print $3}')"
  echo "- machine: $CPU_MODEL, $(nproc) cores, kernel $(uname -r); servers pinned to CPU $SERVER_CPU, redis-benchmark to CPU $CLIENT_CPU"
  echo "- load: \`redis-benchmark -t set|get -c $CLIENTS -d 32 -r 100000 -n N -P {1,16} --csv\`, N = $N_P1 (P=1), $N_P16 (P=16)"
  echo "- $REPS runs per server and config, interleaved darter/redis; the best-rps run is reported with its own p50/p99/CPU"
  echo "- CPU = server utime+stime per request (/proc/PID/stat, all threads), in microseconds"
  echo "- ratio = Darter / Redis (rps: higher is better; latency and CPU: lower is better)"
  echo
  echo "| test | P | darter rps | redis rps | rps ratio | darter p50 ms | redis p50 ms | p50 ratio | darter p99 ms | redis p99 ms | p99 ratio | darter CPU us/req | redis CPU us/req | CPU ratio |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk -F, 'NR > 1 && $6 != "" {
      key = $2 SUBSEP $3 SUBSEP $1
      if (!(key in best) || $6 + 0 > best[key] + 0) { best[key] = $6; p50[key] = $8; p99[key] = $10; cpu[key] = $12 }
    }
    function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "n/a" : sprintf("%.2f", a / b) }
    function v(x) { return x == "" ? "n/a" : x }
    END {
      split("1 16", Ps, " "); split("set get", Ts, " ")
      for (i = 1; i <= 2; i++) for (j = 1; j <= 2; j++) {
        P = Ps[i]; t = Ts[j]; d = P SUBSEP t SUBSEP "darter"; r = P SUBSEP t SUBSEP "redis"
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", toupper(t), P,
          v(best[d]), v(best[r]), ratio(best[d], best[r]),
          v(p50[d]), v(p50[r]), ratio(p50[d], p50[r]),
          v(p99[d]), v(p99[r]), ratio(p99[d], p99[r]),
          v(cpu[d]), v(cpu[r]), ratio(cpu[d], cpu[r])
      }
    }' "$RUNS"
  echo
  echo "<details><summary>All runs</summary>"
  echo
  echo "| server | P | test | run | N | rps | avg ms | p50 ms | p95 ms | p99 ms | max ms | CPU us/req |"
  echo "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk -F, 'NR > 1 { printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", $1, $2, toupper($3), $4, $5, $6, $7, $8, $9, $10, $11, $12 }' "$RUNS"
  echo
  echo "</details>"
} >"$RESULT_FILE"

echo
cat "$RESULT_FILE"
echo
echo "bench_strings: wrote $RESULT_FILE"
exit "$FAILED"
