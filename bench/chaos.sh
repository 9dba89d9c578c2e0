#!/usr/bin/env bash
# Chaos run: what GET /movies/ answers while the catalogue is down, with
# remembered pages and the circuit breaker on, and with both off.
#
#   bash bench/chaos.sh                              # from the repository root
#   BENCH_CHAOS_DURATION=5s bash bench/chaos.sh      # shorter outage (default 30s)
#   BENCH_CHAOS_OPENING=5s bash bench/chaos.sh       # load before the measured run, while the breaker opens (default 3s)
#   BENCH_CHAOS_MODE=drop bash bench/chaos.sh        # how the catalogue fails: 503 (default), drop, hang
#
# With mode hang, a request gives up only after every attempt has timed
# out (MOVIES_API_TIMEOUT x MOVIES_API_MAX_ATTEMPTS, 25s by default): give
# the run longer than that, or shorten the timeout, to see answers at all.
#
# It builds the server and the fake catalogue, starts the fake, then once
# per row: starts the server on a fresh SQLite database, registers a user,
# warms up pages 1..10 while the catalogue is up, takes the catalogue down
# for the whole wrk run (64 connections asking for those 10 pages at
# random), brings it back, and stops the server. The rows differ only in
# MOVIES_STALE_IF_ERROR and MOVIES_BREAKER_THRESHOLD. It reports the share
# of 2xx answers, how many of them were remembered pages, p99 latency, and
# how many requests reached the catalogue while it was down. The table goes
# to stdout and to bench/out/chaos.md, wrk's own output to bench/out/raw/.
#
# Everything listens on 127.0.0.1 only, and every process started here is
# stopped on exit, Ctrl-C included.
set -euo pipefail

die_prefix=chaos
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

duration=${BENCH_CHAOS_DURATION:-30s}
mode=${BENCH_CHAOS_MODE:-503}
opening=${BENCH_CHAOS_OPENING:-3s}
cooldown=${MOVIES_BREAKER_COOLDOWN:-10s}

case $mode in
  503 | drop | hang) ;;
  *) die "BENCH_CHAOS_MODE must be 503, drop or hang, not $mode" ;;
esac

need_tools
start_cleanup movies-chaos

# --- build ----------------------------------------------------------------

log "building the server and the fake catalogue"
go build -o "$tmp/movies" .
go build -o "$tmp/fakecatalogue" ./bench/fakecatalogue

# --- the fake catalogue ---------------------------------------------------

# Pinned: the run measures what production runs against a catalogue down.
unset BCRYPT_COST LOG_LEVEL PPROF_ADDR PUBLIC_URL METRICS_ADDR

start_catalogue chaos-catalogue
catalogue=http://127.0.0.1:$cat_port

# chaos DOWN: take the catalogue down (1) or bring it back (0).
chaos() {
  local q="down=$1"
  [[ $1 == 1 ]] && q+="&mode=$mode"
  curl -s -o /dev/null --max-time 5 -X POST "$catalogue/_chaos?$q" || die "the fake catalogue did not take down=$1"
}

# while_down: print how many catalogue requests arrived while down so far.
while_down() {
  curl -s --max-time 5 "$catalogue/_stats" | sed -n 's/.*"requests_while_down":\([0-9]*\).*/\1/p'
}

# --- one row --------------------------------------------------------------

mkdir -p "$raw"
rows=()

# run_row NAME LABEL ENV...: start the server with ENV, warm up, run wrk
# with the catalogue down, stop the server, add a table row.
run_row() {
  local name=$1 label=$2
  shift 2
  local service server_pid logfile=$tmp/server-$name.log
  start_server "$logfile" "$tmp/$name.db" "$@"
  log "$label: server on $service (pid $server_pid), $*"

  local code token
  code=$(curl -s -o "$tmp/answer" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    --data-binary '{"username":"chaos","password":"correct horse battery"}' "$service/register/")
  [[ $code == 201 ]] || die "register: status $code, want 201: $(head -c 300 "$tmp/answer")"
  token=$(sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' "$tmp/answer")
  [[ -n $token ]] || die "register answered no access_token"

  local n
  for n in $(seq 10); do
    code=$(curl -s -o "$tmp/answer" -w '%{http_code}' -H "Authorization: Bearer $token" "$service/movies/?page=$n")
    [[ $code == 200 ]] || die "warm-up of page $n: status $code, want 200: $(head -c 300 "$tmp/answer")"
  done

  local before after file=$raw/chaos.$name.txt
  before=$(while_down)
  chaos 1
  # The first seconds of the outage: requests retry until the breaker
  # opens. Measured apart, so that the main run shows the breaker open.
  log "$label: catalogue down ($mode): $opening to open the breaker"
  wrk -t2 -c64 "-d$opening" --timeout 10s --latency -s "$bench/chaos.lua" \
    -H "Authorization: Bearer $token" "$service/movies/" >"$raw/chaos.$name.opening.txt" 2>&1 || true
  log "$label: catalogue down ($mode) for $duration under wrk -t2 -c64"
  if ! wrk -t2 -c64 "-d$duration" --timeout 10s --latency -s "$bench/chaos.lua" \
    -H "Authorization: Bearer $token" "$service/movies/" >"$file" 2>&1; then
    chaos 0
    cat "$file" >&2
    die "wrk failed against $service"
  fi
  after=$(while_down)
  chaos 0
  kill -0 "$server_pid" 2>/dev/null || { tail -n 20 "$logfile" >&2; die "the server exited"; }
  kill -TERM "$server_pid"
  wait "$server_pid" || log "$label: the server exited with status $? after SIGTERM"

  local line
  line=$(grep '^chaos:' "$file") || { cat "$file" >&2; die "wrk printed no chaos: line"; }
  local requests ok stale s502 s503 s504 other socket_errors p50_us p99_us duration_us
  local kv
  for kv in ${line#chaos: }; do
    [[ $kv =~ ^(requests|ok|stale|s50[234]|other|socket_errors|p50_us|p99_us|duration_us)=([0-9]+)$ ]] ||
      die "cannot read wrk's line: $line"
    printf -v "${BASH_REMATCH[1]}" '%s' "${BASH_REMATCH[2]}"
  done
  rows+=("$(awk -v label="$label" -v req="$requests" -v ok="$ok" -v stale="$stale" \
    -v s502="$s502" -v s503="$s503" -v s504="$s504" -v other="$other" -v errs="$socket_errors" \
    -v p50="$p50_us" -v p99="$p99_us" -v dur="$duration_us" -v calls="$((after - before))" 'BEGIN {
      tried = req + errs
      # No answer at all: every request outlived the run (mode hang).
      rate = tried ? sprintf("%.1f%%", 100 * ok / tried) : "n/a"
      printf "| %s | %s | %d / %d | %d | %d / %d / %d / %d | %d | %.0f | %.1f | %.1f | %d |",
        label, rate, ok, tried, stale, s502, s503, s504, other, errs,
        (dur ? req / (dur / 1e6) : 0), p50 / 1000, p99 / 1000, calls
    }')")
}

run_row on "features on" MOVIES_STALE_IF_ERROR=24h MOVIES_BREAKER_THRESHOLD=3 "MOVIES_BREAKER_COOLDOWN=$cooldown"
run_row off "features off" MOVIES_STALE_IF_ERROR=0 MOVIES_BREAKER_THRESHOLD=0

# --- report ---------------------------------------------------------------

commit=$(commit_name)
passed=()
for v in MOVIES_API_TIMEOUT MOVIES_API_MAX_ATTEMPTS; do
  [[ -n ${!v:-} ]] && passed+=("$v=${!v}")
done

{
  echo "Chaos run of $commit on $(date -u +%Y-%m-%dT%H:%MZ): $(nproc) CPUs, server and wrk on the same machine."
  echo "Pages 1..10 warmed up, then the fake catalogue down (mode \`$mode\`): first $opening of load while the breaker opens (not in the table), then the whole \`wrk -t2 -c64 -d$duration --timeout 10s\` run over those pages. Catalogue calls are counted over the whole outage."
  echo "\"features on\": \`MOVIES_STALE_IF_ERROR=24h MOVIES_BREAKER_THRESHOLD=3 MOVIES_BREAKER_COOLDOWN=$cooldown\`; \"features off\": \`MOVIES_STALE_IF_ERROR=0 MOVIES_BREAKER_THRESHOLD=0\`${passed[*]:+; both with ${passed[*]}}."
  echo
  echo "| run | success (2xx) | 2xx / tried | remembered pages | 502 / 503 / 504 / other | socket errors | req/s | p50 ms | p99 ms | catalogue calls while down |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
} >"$out/chaos.md"

echo
cat "$out/chaos.md"
echo
echo "Table written to bench/out/chaos.md; wrk's output in bench/out/raw/chaos.*.txt."
