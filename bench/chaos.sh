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

cd "$(dirname "$0")/.."
root=$PWD
bench=$root/bench
out=$bench/out
raw=$out/raw
duration=${BENCH_CHAOS_DURATION:-30s}
mode=${BENCH_CHAOS_MODE:-503}
opening=${BENCH_CHAOS_OPENING:-3s}
cooldown=${MOVIES_BREAKER_COOLDOWN:-10s}

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'chaos: %s\n' "$*" >&2; exit 1; }

case $mode in
  503 | drop | hang) ;;
  *) die "BENCH_CHAOS_MODE must be 503, drop or hang, not $mode" ;;
esac

# --- tools ---------------------------------------------------------------

missing=()
command -v wrk >/dev/null || missing+=(wrk)
command -v curl >/dev/null || missing+=(curl)
if ((${#missing[@]})); then
  log "installing ${missing[*]}"
  sudo=()
  if ((EUID != 0)); then
    command -v sudo >/dev/null || die "need root (or sudo) to install ${missing[*]}"
    sudo=(sudo)
  fi
  "${sudo[@]}" apt-get update
  "${sudo[@]}" apt-get install -y "${missing[@]}"
fi
command -v go >/dev/null || die "go is not on PATH"

# --- processes and cleanup -----------------------------------------------

tmp=$(mktemp -d "${TMPDIR:-/tmp}/movies-chaos.XXXXXX")
pids=() # every background process started here

cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  # The server shuts down gracefully on SIGTERM; give it a few seconds.
  for _ in $(seq 50); do
    local alive=0
    for pid in "${pids[@]}"; do
      kill -0 "$pid" 2>/dev/null && alive=1
    done
    ((alive)) || break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$tmp"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# free_port prints a loopback port that nothing listens on and that this
# script has not handed out yet.
used_ports=" "
free_port() {
  local p
  for _ in $(seq 200); do
    p=$((20000 + RANDOM % 40000))
    [[ $used_ports == *" $p "* ]] && continue
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      used_ports+="$p "
      echo "$p"
      return
    fi
  done
  die "no free loopback port found"
}

# wait_http URL PID LOG [STATUS]: wait until URL answers (with STATUS when
# given, any status otherwise) while PID is alive; on failure show LOG.
wait_http() {
  local url=$1 pid=$2 logfile=$3 want=${4:-} code
  for _ in $(seq 200); do
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$logfile" >&2; die "process for $url exited"; }
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$url" || true)
    if [[ $code != 000 && ( -z $want || $code == "$want" ) ]]; then
      return
    fi
    sleep 0.1
  done
  tail -n 20 "$logfile" >&2
  die "$url did not answer ${want:-at all} within 20s (last status $code)"
}

# --- build ----------------------------------------------------------------

log "building the server and the fake catalogue"
go build -o "$tmp/movies" .
go build -o "$tmp/fakecatalogue" ./bench/fakecatalogue

# --- the fake catalogue ---------------------------------------------------

# Pinned: the run measures what production runs against a catalogue down.
unset BCRYPT_COST LOG_LEVEL PPROF_ADDR PUBLIC_URL METRICS_ADDR

cat_port=$(free_port)
catalogue=http://127.0.0.1:$cat_port
export MOVIES_API_USERNAME=chaos-catalogue
MOVIES_API_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
export MOVIES_API_PASSWORD

"$tmp/fakecatalogue" -addr "127.0.0.1:$cat_port" -delay 20ms >"$tmp/fakecatalogue.log" 2>&1 &
cat_pid=$!
pids+=("$cat_pid")
wait_http "$catalogue/_stats" "$cat_pid" "$tmp/fakecatalogue.log" 200

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
  local port service server_pid logfile=$tmp/server-$name.log
  port=$(free_port)
  service=http://127.0.0.1:$port
  env "ADDR=127.0.0.1:$port" "DATABASE_URL=$tmp/$name.db" \
    "MOVIES_API_URL=$catalogue/api/v1/maya/movies/" "$@" \
    "$tmp/movies" >"$logfile" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  wait_http "$service/healthz" "$server_pid" "$logfile" 200
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

commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
  commit+=" + uncommitted changes"
fi
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
