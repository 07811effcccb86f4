#!/usr/bin/env bash
# perf/memory.sh — memory per key: Darter vs Redis, N keys `key:0..key:N-1` with VALUE_SIZE-byte values.
#
# Method
# - Builds darter in release mode (unless DARTER_BIN is set), then for each server in
#   turn (darter --proactor_threads 1, redis-server --save '' --appendonly no, and
#   BASELINE_BIN as a second darter when set): start it, PING it, read VmRSS from
#   /proc/PID/status (the empty server), load exactly N keys with `redis-cli --pipe`
#   from a generated file of `SET key:<i> <32-byte value>` commands (i = 0..N-1, in
#   order; the value is the same non-numeric 32 bytes, so Redis stores embstr and Darter
#   a 32-byte string), check DBSIZE = N, wait 1 s, read VmRSS again, stop the server.
# - Bytes per key = (VmRSS loaded - VmRSS empty) / N. Both servers run one at a time,
#   pinned to SERVER_CPU, so neither sees the other's pages.
# - Redis uses jemalloc; Darter uses the system allocator (glibc malloc).
# - Writes perf/results/memory-YYYY-MM-DD.md (RESULT_FILE overrides) and prints it.
#
# Environment
#   N            keys (default 1000000)
#   VALUE_SIZE   bytes per value (default 32)
#   DARTER_BIN   darter binary (default target/release/darter, built here)
#   BASELINE_BIN optional second darter binary, reported as "darter (baseline)"
#   BASELINE_LABEL  label for it (default "darter (baseline)")
#   REDIS_BIN    default redis-server in PATH
#   PORT         default 16390
#   SERVER_CPU   default 1
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

N="${N:-1000000}"
PORT="${PORT:-16390}"
SERVER_CPU="${SERVER_CPU:-1}"
REDIS_BIN="${REDIS_BIN:-redis-server}"
BASELINE_LABEL="${BASELINE_LABEL:-darter (baseline)}"
DATE="$(date +%F)"
RESULT_FILE="${RESULT_FILE:-$ROOT/perf/results/memory-$DATE.md}"
[[ "${VALUE_SIZE:-32}" == 32 ]] || RESULT_FILE="${RESULT_FILE%.md}-$VALUE_SIZE.md"
TMP="$ROOT/perf/tmp"
mkdir -p "$TMP" "$(dirname "$RESULT_FILE")"

for tool in redis-cli taskset awk "$REDIS_BIN"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "memory: '$tool' not found" >&2; exit 1; }
done

if [[ -n "${DARTER_BIN:-}" ]]; then
  echo "memory: DARTER_BIN=$DARTER_BIN (not building)"
else
  echo "memory: cargo build --release"
  cargo build --release
  DARTER_BIN="$ROOT/target/release/darter"
fi

SERVER_PID=""
cleanup() {
  if [[ -n "$SERVER_PID" ]]; then
    kill "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if redis-cli -p "$PORT" ping >/dev/null 2>&1; then
  echo "memory: something already answers on port $PORT; set PORT" >&2
  exit 1
fi

# VALUE_SIZE bytes (default 32), never an integer: the alphabet repeated.
VALUE_SIZE="${VALUE_SIZE:-32}"
VALUE=$(awk -v n="$VALUE_SIZE" 'BEGIN { a = "abcdefghijklmnopqrstuvwxyz-"; s = ""; while (length(s) < n) s = s a; print substr(s, 1, n) }')
[[ ${#VALUE} == "$VALUE_SIZE" ]]
LOAD="$TMP/memory-load-$N-$VALUE_SIZE.resp"
if [[ ! -s "$LOAD" ]]; then
  echo "memory: generating $LOAD"
  awk -v n="$N" -v v="$VALUE" 'BEGIN {
    for (i = 0; i < n; i++) {
      k = "key:" i
      printf "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n", length(k), k, length(v), v
    }
  }' >"$LOAD.part"
  mv "$LOAD.part" "$LOAD"
fi

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

ROWS=()
measure() { # label binary args...
  local label=$1 bin=$2
  shift 2
  local log="$TMP/memory-$(echo "$label" | tr -c 'a-z0-9' '_').log"
  taskset -c "$SERVER_CPU" "$bin" "$@" --port "$PORT" >"$log" 2>&1 &
  SERVER_PID=$!
  local i
  for i in $(seq 1 200); do
    if redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; then break; fi
    kill -0 "$SERVER_PID" 2>/dev/null || { echo "memory: $label exited; log:" >&2; tail -n 20 "$log" >&2; exit 1; }
    sleep 0.05
  done
  sleep 0.5
  local empty loaded dbsize t0 t1
  empty=$(rss_kb "$SERVER_PID")
  t0=$(date +%s.%N)
  redis-cli -p "$PORT" --pipe <"$LOAD" >"$log.pipe" 2>&1 || { echo "memory: redis-cli --pipe failed against $label" >&2; cat "$log.pipe" >&2; exit 1; }
  t1=$(date +%s.%N)
  dbsize=$(redis-cli -p "$PORT" dbsize)
  if [[ "$dbsize" != "$N" ]]; then
    echo "memory: $label has DBSIZE $dbsize, expected $N" >&2
    exit 1
  fi
  sleep 1
  loaded=$(rss_kb "$SERVER_PID")
  local used
  used=$(redis-cli -p "$PORT" info memory | tr -d '\r' | awk -F: '/^used_memory:/ {print $2}')
  kill "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  local row
  row=$(awk -v l="$label" -v e="$empty" -v f="$loaded" -v n="$N" -v u="${used:-}" -v t="$(echo "$t1 - $t0" | bc)" 'BEGIN {
    printf "| %s | %.1f | %.1f | %.1f | %.1f | %s | %.2f |", l, e / 1024, f / 1024, (f - e) / 1024, (f - e) * 1024 / n, (u == "" ? "n/a" : sprintf("%.1f", u / n)), t
  }')
  echo "  $row"
  ROWS+=("$row")
}

echo "memory: $N keys per server"
measure "darter" "$DARTER_BIN" --proactor_threads 1
if [[ -n "${BASELINE_BIN:-}" ]]; then
  measure "$BASELINE_LABEL" "$BASELINE_BIN" --proactor_threads 1
fi
measure "redis" "$REDIS_BIN" --save "" --appendonly no

COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
DIRTY="$(git -C "$ROOT" status --porcelain 2>/dev/null | grep -q . && echo ' (dirty tree)' || true)"
{
  echo "# Memory per key — $DATE"
  echo
  echo "- $N keys \`key:0\`..\`key:$((N - 1))\`, $VALUE_SIZE-byte value each (\`SET\` via \`redis-cli --pipe\`, DBSIZE checked)"
  echo "- darter: \`$DARTER_BIN --proactor_threads 1\`, commit $COMMIT$DIRTY"
  [[ -n "${BASELINE_BIN:-}" ]] && echo "- $BASELINE_LABEL: \`$BASELINE_BIN --proactor_threads 1\`"
  echo "- redis: \`$REDIS_BIN --save '' --appendonly no\` — $("$REDIS_BIN" --version | awk '{print $3}') (jemalloc)"
  echo "- RSS = VmRSS of /proc/PID/status; bytes/key = (loaded - empty) / N; used_memory/key from INFO memory where the server reports it"
  echo
  echo "| server | empty RSS MiB | loaded RSS MiB | delta MiB | bytes/key (RSS) | used_memory/key | load time s |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${ROWS[@]}"
} >"$RESULT_FILE"
echo
cat "$RESULT_FILE"
echo "memory: wrote $RESULT_FILE"
