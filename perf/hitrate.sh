#!/usr/bin/env bash
# perf/hitrate.sh — cache hit rate and peak RSS under maxmemory: Darter cache mode vs Redis LRU/LFU.
#
#   core 1: one server at a time, maxmemory X:
#             redis-server --maxmemory X --maxmemory-policy allkeys-lru|allkeys-lfu --save '' --appendonly no
#             darter --port P --proactor_threads 1 --cache_mode --maxmemory X
#   core 0: darter-hitrate -k 4M -s {0.99, 0.8} -d 64 -c 4 -P 64 -w 10M -n 5M
#           (GET key ~ Zipf(s); on nil, SET key <64 B>)
#
# Method
# - Builds the release binaries (`cargo build --release --bins`: darter and the load
#   generator darter-hitrate, tools/hitrate.rs) unless NO_BUILD=1.
# - For each skew and each server, a fresh server is started pinned to SERVER_CPU (a
#   cold, empty cache every time), driven by the same client with the same arguments
#   and seed from CLIENT_CPU, then stopped. The client's first WARMUP operations fill
#   the cache and are not counted; the next OPS are. One operation = one GET, plus one
#   SET when the GET missed. Hit rate = hits / (hits + misses) of the counted ones.
# - Warm-up: LRU is flat after ~2M operations, but Redis's LFU keeps climbing for ~20M
#   at 64 MiB (its logarithmic counters need many hits to tell the marginal keys apart,
#   and they decay with wall-clock minutes, so its curve also depends on the request
#   rate). 10M warm-up + 5M counted keeps a full run to a few minutes; LFU then sits
#   within ~0.01 of its long-run value (0.812 at s = 0.99, 0.552 at s = 0.8 after 40M
#   operations). The "last 1M" column and the per-million rows in the result file show
#   how flat each curve was.
# - Key space KEYS ≈ 10× what fits in X. Default X = 64 MiB and 16-byte keys with
#   64-byte values: Redis 7.0.15 holds ~387k such keys at 64 MiB (~173 B per key of
#   used_memory: dictEntry, robj, two sds, hash buckets), so KEYS = 4M is 10.3×.
# - Peak RSS = the larger of VmHWM of /proc/PID/status at the end of the run (the
#   kernel's high-water mark, which it updates lazily and can miss a peak that was
#   given back by madvise) and the largest VmRSS sampled every 0.2 s during the run.
#   RSS/X = peak RSS / X (the issue's target for Darter: ≤ 1.1).
# - After the run, from the server: DBSIZE (keys held), INFO memory used_memory and
#   INFO stats evicted_keys where it reports them (else n/a).
# - "ideal" = H(C, s) / H(KEYS, s) with C = the keys the server held: the hit rate of
#   a cache that always holds exactly the C most popular keys, which is the best any
#   online policy can do for C keys when requests are independent draws (as here). It
#   shows how much of the gap is the policy and how much is fitting fewer keys.
# - Error replies (-OOM while Darter cannot evict yet) are counted by the client, not
#   failures; a run whose client fails, times out (RUN_TIMEOUT) or whose server dies
#   is reported as failed and the script continues with the next one, exiting 1.
# - Writes the table to RESULT_FILE and prints it; client and server logs, with the
#   per-million-operations hit-rate rows that show the cache converging, go to
#   perf/tmp/.
#
# Environment
#   SERVERS      which rows, space-separated, from: redis-lru redis-lfu darter
#                (default all three; SERVERS=darter for Darter only,
#                SERVERS="redis-lru redis-lfu" for Redis only)
#   SKEWS        default "0.99 0.8"
#   MAXMEMORY    X in bytes (default 67108864 = 64 MiB), passed to both servers
#   KEYS         key space (default 4000000)
#   VALUE_SIZE   bytes per value (default 64)
#   CONNECTIONS / PIPELINE   client connections and GETs per batch (default 4 / 64)
#   WARMUP / OPS uncounted and counted operations per run (default 10000000 / 5000000)
#   SEED         client seed (default 1)
#   DARTER_BIN   default target/release/darter;  DARTER_EXTRA_ARGS more darter flags
#   REDIS_BIN    default redis-server in PATH
#   HITRATE_BIN  default target/release/darter-hitrate
#   PORT         default 16410;  SERVER_CPU / CLIENT_CPU default 1 / 0
#   RUN_TIMEOUT  seconds per client run (default 300)
#   RESULT_FILE  default perf/results/hitrate-YYYY-MM-DD.md when all three servers run,
#                else perf/tmp/hitrate-YYYY-MM-DD-<servers>.md (a partial run never
#                overwrites a recorded comparison)
#
# Servers are always killed on exit (trap on EXIT, INT, TERM).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

ALL_SERVERS="redis-lru redis-lfu darter"
SERVERS="${SERVERS:-$ALL_SERVERS}"
SKEWS="${SKEWS:-0.99 0.8}"
MAXMEMORY="${MAXMEMORY:-67108864}"
KEYS="${KEYS:-4000000}"
VALUE_SIZE="${VALUE_SIZE:-64}"
CONNECTIONS="${CONNECTIONS:-4}"
PIPELINE="${PIPELINE:-64}"
WARMUP="${WARMUP:-10000000}"
OPS="${OPS:-5000000}"
SEED="${SEED:-1}"
REDIS_BIN="${REDIS_BIN:-redis-server}"
DARTER_BIN="${DARTER_BIN:-$ROOT/target/release/darter}"
HITRATE_BIN="${HITRATE_BIN:-$ROOT/target/release/darter-hitrate}"
PORT="${PORT:-16410}"
SERVER_CPU="${SERVER_CPU:-1}"
CLIENT_CPU="${CLIENT_CPU:-0}"
RUN_TIMEOUT="${RUN_TIMEOUT:-300}"
DATE="$(date +%F)"
TMP="$ROOT/perf/tmp"
COMMAND_VARS="SERVERS SKEWS MAXMEMORY KEYS VALUE_SIZE CONNECTIONS PIPELINE WARMUP OPS SEED"
[[ -n "${RESULT_FILE:-}" ]] && COMMAND_VARS+=" RESULT_FILE"
if [[ -z "${RESULT_FILE:-}" ]]; then
  if [[ "$SERVERS" == "$ALL_SERVERS" ]]; then
    RESULT_FILE="$ROOT/perf/results/hitrate-$DATE.md"
  else
    RESULT_FILE="$TMP/hitrate-$DATE-$(echo "$SERVERS" | tr -s ' ' '-').md"
  fi
fi
mkdir -p "$TMP" "$(dirname "$RESULT_FILE")"

die() { echo "hitrate: $*" >&2; exit 1; }

[[ "$MAXMEMORY" =~ ^[0-9]+$ && "$MAXMEMORY" -gt 0 ]] || die "MAXMEMORY must be a positive number of bytes, got '$MAXMEMORY'"
for s in $SERVERS; do
  case "$s" in redis-lru | redis-lfu | darter) ;; *) die "unknown server '$s' in SERVERS (redis-lru redis-lfu darter)" ;; esac
done
for tool in redis-cli taskset timeout awk; do
  command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (apt-get install -y redis-tools util-linux coreutils gawk)"
done
if [[ "$SERVERS" == *redis* ]]; then
  command -v "$REDIS_BIN" >/dev/null 2>&1 || die "'$REDIS_BIN' not found (apt-get install -y redis-server)"
fi

if [[ "${NO_BUILD:-0}" != 1 ]]; then
  echo "hitrate: cargo build --release --bins"
  cargo build --release --bins
fi
[[ -x "$HITRATE_BIN" ]] || die "$HITRATE_BIN is not executable"
if [[ "$SERVERS" == *darter* ]]; then
  [[ -x "$DARTER_BIN" ]] || die "$DARTER_BIN is not executable"
fi

SERVER_PID=""
CLIENT_PID=""
SAMPLER_PID=""
stop_pid() { # pid: TERM it and reap it
  [[ -n "$1" ]] || return 0
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
cleanup() {
  stop_pid "$CLIENT_PID"
  stop_pid "$SAMPLER_PID"
  stop_pid "$SERVER_PID"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if redis-cli -p "$PORT" ping >/dev/null 2>&1; then
  die "something already answers on port $PORT; stop it or set PORT"
fi

status_kb() { # pid field → the field of /proc/PID/status in kB (empty if gone)
  awk -v f="$2:" '$1 == f {print $2}' "/proc/$1/status" 2>/dev/null || true
}
info_field() { # section field → value from INFO (empty if missing)
  timeout 10 redis-cli -p "$PORT" info "$1" 2>/dev/null | tr -d '\r' | awk -F: -v f="$2" '$1 == f {print $2}' || true
}
result_field() { # file field → value of field=... on the RESULT line
  awk -v f="$2" '/^RESULT / { for (i = 2; i <= NF; i++) { split($i, kv, "="); if (kv[1] == f) print substr($i, length(f) + 2) } }' "$1"
}
ideal_hit_rate() { # held keys skew → H(held, s) / H(KEYS, s)
  awk -v c="$1" -v s="$2" -v n="$KEYS" 'BEGIN {
    if (c == "" || c + 0 <= 0) { print "n/a"; exit }
    if (c > n) c = n
    for (r = 1; r <= n; r++) { t = r ^ (-s); all += t; if (r <= c) top += t }
    printf "%.4f", top / all
  }'
}

ROWS="$TMP/hitrate-rows.tsv"
: >"$ROWS"
FAILED=0

run_one() { # server skew
  local server=$1 skew=$2
  local tag="$server-s$skew"
  local slog="$TMP/hitrate-$tag.server.log" clog="$TMP/hitrate-$tag.client.log" rss_log="$TMP/hitrate-$tag.rss"
  local label args=()
  case "$server" in
    redis-lru | redis-lfu)
      label="redis ${server#redis-}"
      args=("$REDIS_BIN" --port "$PORT" --save "" --appendonly no --maxmemory "$MAXMEMORY" --maxmemory-policy "allkeys-${server#redis-}")
      ;;
    darter)
      label="darter cache_mode"
      args=("$DARTER_BIN" --port "$PORT" --proactor_threads 1 --cache_mode --maxmemory "$MAXMEMORY")
      # shellcheck disable=SC2206 # split on spaces on purpose
      [[ -n "${DARTER_EXTRA_ARGS:-}" ]] && args+=(${DARTER_EXTRA_ARGS})
      ;;
  esac
  echo "hitrate: $label, skew $skew: $(printf '%q ' "${args[@]}")"

  # taskset execs the server, so $! is the server's PID.
  taskset -c "$SERVER_CPU" "${args[@]}" >"$slog" 2>&1 &
  SERVER_PID=$!
  local i ready=0
  for i in $(seq 1 200); do
    kill -0 "$SERVER_PID" 2>/dev/null || break
    if redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG; then ready=1; break; fi
    sleep 0.05
  done
  if [[ $ready != 1 ]]; then
    echo "hitrate: $label did not start; log tail:" >&2
    tail -n 20 "$slog" >&2 || true
    stop_pid "$SERVER_PID"; SERVER_PID=""
    printf '%s\t%s\tfailed: server did not start\n' "$label" "$skew" >>"$ROWS"
    FAILED=1
    return
  fi

  # VmRSS every 0.2 s while the client runs (pinned with the client, not the server).
  : >"$rss_log"
  taskset -c "$CLIENT_CPU" bash -c 'while kill -0 "$1" 2>/dev/null; do awk '"'"'$1 == "VmRSS:" {print $2}'"'"' "/proc/$1/status" 2>/dev/null; sleep 0.2; done' _ "$SERVER_PID" >>"$rss_log" 2>/dev/null &
  SAMPLER_PID=$!

  # In the background + `wait`, so that INT/TERM run the trap at once.
  timeout "$RUN_TIMEOUT" taskset -c "$CLIENT_CPU" "$HITRATE_BIN" --port "$PORT" --keys "$KEYS" --skew "$skew" \
    --value-size "$VALUE_SIZE" --connections "$CONNECTIONS" --pipeline "$PIPELINE" --warmup "$WARMUP" \
    --ops "$OPS" --seed "$SEED" >"$clog" 2>&1 &
  CLIENT_PID=$!
  local rc=0
  wait "$CLIENT_PID" || rc=$?
  CLIENT_PID=""
  stop_pid "$SAMPLER_PID"; SAMPLER_PID=""

  local alive=1
  kill -0 "$SERVER_PID" 2>/dev/null || alive=0
  local hwm="" rss_max held="" used="" evicted=""
  if [[ $alive == 1 ]]; then
    hwm=$(status_kb "$SERVER_PID" VmHWM)
    held=$(timeout 10 redis-cli -p "$PORT" dbsize 2>/dev/null | tr -d '\r' || true)
    [[ "$held" =~ ^[0-9]+$ ]] || held=""
    used=$(info_field memory used_memory)
    evicted=$(info_field stats evicted_keys)
  fi
  rss_max=$(awk 'max < $1 + 0 { max = $1 + 0 } END { print max + 0 }' "$rss_log")
  stop_pid "$SERVER_PID"; SERVER_PID=""

  local why=""
  if [[ $alive != 1 ]]; then
    why="server died (log: perf/tmp/$(basename "$slog"))"
    tail -n 20 "$slog" >&2 || true
  elif [[ $rc == 124 ]]; then
    why="client timed out after ${RUN_TIMEOUT}s"
  elif [[ $rc != 0 ]]; then
    why="client failed (exit $rc): $(grep -m1 '^darter-hitrate: connection' "$clog" || tail -n 1 "$clog")"
  fi
  if [[ -n "$why" ]]; then
    echo "hitrate: $label, skew $skew: $why" >&2
    printf '%s\t%s\tfailed: %s\n' "$label" "$skew" "$why" >>"$ROWS"
    FAILED=1
    return
  fi

  local hit_rate last ops_s errors oom ideal
  hit_rate=$(result_field "$clog" hit_rate)
  last=$(awk '$3 == "measured" { v = $4 } END { print (v == "" ? "n/a" : v) }' "$clog")
  ops_s=$(result_field "$clog" ops_per_sec)
  errors=$(result_field "$clog" errors)
  oom=$(result_field "$clog" oom_errors)
  ideal=$(ideal_hit_rate "$held" "$skew")
  # label skew hit_rate last ideal ops/s errors oom held evicted used hwm_kB rss_max_kB
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$skew" "$hit_rate" "$last" "$ideal" "$ops_s" \
    "$errors" "$oom" "${held:-n/a}" "${evicted:-n/a}" "${used:-n/a}" "${hwm:-n/a}" "$rss_max" >>"$ROWS"
  echo "  hit rate $hit_rate (last 1M $last; ideal for $held keys: $ideal), $ops_s ops/s, errors $errors (OOM $oom), VmHWM ${hwm} kB"
  grep -m1 '^first error:' "$clog" || true
}

for skew in $SKEWS; do
  for server in $SERVERS; do
    run_one "$server" "$skew"
  done
done

# --- summary ---
COMMIT="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo none)"
DIRTY="$(git -C "$ROOT" status --porcelain --untracked-files=no 2>/dev/null | grep -q . && echo ' (dirty tree)' || true)"
CPU_MODEL="$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)"
{
  echo "# Cache hit rate under maxmemory — $DATE"
  echo
  echo "- command: \`$(for v in $COMMAND_VARS; do printf '%s=%q ' "$v" "${!v}"; done)perf/hitrate.sh\`"
  echo "- X = maxmemory = $MAXMEMORY bytes ($(awk -v x="$MAXMEMORY" 'BEGIN { printf "%.1f MiB", x / 1048576 }')), the same for every server"
  [[ "$SERVERS" == *redis* ]] && echo "- redis: \`$REDIS_BIN --port $PORT --save '' --appendonly no --maxmemory $MAXMEMORY --maxmemory-policy allkeys-lru|allkeys-lfu\` — $("$REDIS_BIN" --version | awk '{print $3, $5}'), default maxmemory-samples 5, lfu-log-factor 10, lfu-decay-time 1"
  [[ "$SERVERS" == *darter* ]] && echo "- darter: \`$DARTER_BIN --port $PORT --proactor_threads 1 --cache_mode --maxmemory $MAXMEMORY${DARTER_EXTRA_ARGS:+ $DARTER_EXTRA_ARGS}\`, commit $COMMIT$DIRTY"
  echo "- client: \`darter-hitrate --keys $KEYS --skew S --value-size $VALUE_SIZE --connections $CONNECTIONS --pipeline $PIPELINE --warmup $WARMUP --ops $OPS --seed $SEED\` (tools/hitrate.rs, commit $COMMIT$DIRTY): GET key:NNNNNNNNNNNN (16 B) drawn Zipf(S) over $KEYS keys; on nil, SET it to a $VALUE_SIZE-byte value; the first $WARMUP operations not counted"
  echo "- machine: $CPU_MODEL, $(nproc) cores, kernel $(uname -r), shared with other work; server pinned to CPU $SERVER_CPU, client to CPU $CLIENT_CPU; a fresh server per row"
  echo "- hit rate = hits / (hits + misses) of the counted GETs; ideal = H(held, S) / H($KEYS, S), the best hit rate for a cache of that many keys (always holding the most popular); last 1M = hit rate of the last million counted operations (close to the mean when the cache had converged); VmHWM = the kernel's high-water mark read after the run; max sampled = largest VmRSS seen every 0.2 s; peak RSS = the larger of the two; RSS/X = peak RSS / X; held = DBSIZE after the run"
  echo
  echo "| server / policy | skew | hit rate | last 1M | ideal for held keys | ops/s | error replies (OOM) | keys held | evicted | used_memory MiB | VmHWM MiB | max sampled RSS MiB | peak RSS / X |"
  echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  awk -F'\t' -v x="$MAXMEMORY" '
    function mib(kb) { return kb ~ /^[0-9]+$/ ? sprintf("%.1f", kb / 1024) : "n/a" }
    $3 ~ /^failed/ { printf "| %s | %s | %s | | | | | | | | | | |\n", $1, $2, $3; next }
    {
      used = $11 ~ /^[0-9]+$/ ? sprintf("%.1f", $11 / 1048576) : "n/a"
      peak = $13 + 0
      if ($12 ~ /^[0-9]+$/ && $12 + 0 > peak) peak = $12 + 0
      ratio = peak > 0 ? sprintf("%.2f", peak * 1024 / x) : "n/a"
      printf "| %s | %s | %s | %s | %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, used, mib($12), mib($13), ratio
    }' "$ROWS"
  echo
  echo "<details><summary>Hit rate per million operations (warm-up included)</summary>"
  echo
  for skew in $SKEWS; do
    for server in $SERVERS; do
      clog="$TMP/hitrate-$server-s$skew.client.log"
      [[ -f "$clog" ]] || continue
      echo "$server, skew $skew:"
      echo
      echo '```text'
      awk '$3 == "warm-up" || $3 == "measured" || $3 == "mixed" || $1 == "from_op"' "$clog"
      echo '```'
      echo
    done
  done
  echo "</details>"
} >"$RESULT_FILE"

echo
cat "$RESULT_FILE"
echo
echo "hitrate: wrote $RESULT_FILE"
exit "$FAILED"
