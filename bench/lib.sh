# Shell functions shared by the load benchmarks (bench/run.sh, crowd.sh,
# chaos.sh, hostile.sh). Sourced, not run, first thing after
# `set -euo pipefail`: it cds to the repository root and sets root, bench,
# out and raw. A caller may set die_prefix (default "bench") first.

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
bench=$root/bench
out=$bench/out
raw=$out/raw

log() { printf '== %s\n' "$*" >&2; }
die() { printf '%s: %s\n' "${die_prefix:-bench}" "$*" >&2; exit 1; }

# --- tools ---------------------------------------------------------------

# need_tools: install wrk and curl from Debian when missing; check for go.
need_tools() {
  local missing=()
  command -v wrk >/dev/null || missing+=(wrk)
  command -v curl >/dev/null || missing+=(curl)
  if ((${#missing[@]})); then
    log "installing ${missing[*]}"
    local sudo=()
    if ((EUID != 0)); then
      command -v sudo >/dev/null || die "need root (or sudo) to install ${missing[*]}"
      sudo=(sudo)
    fi
    "${sudo[@]}" apt-get update
    "${sudo[@]}" apt-get install -y "${missing[@]}"
  fi
  command -v go >/dev/null || die "go is not on PATH"
}

# --- processes and cleanup -----------------------------------------------

# start_cleanup NAME: make the scratch directory $tmp and stop every
# process listed in $pids on exit, Ctrl-C included.
start_cleanup() {
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/$1.XXXXXX")
  pids=()        # every background process started here
  trap cleanup EXIT
  trap 'exit 130' INT
  trap 'exit 143' TERM
}

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

# free_port prints a loopback port that nothing listens on and that this
# script has not handed out yet. It draws below the range the kernel hands
# out to outgoing connections (ip_local_port_range): a listener cannot bind
# a port that a finished connection still holds in TIME-WAIT, and a load
# test leaves thousands of those.
used_ports=" "
free_port() {
  local p lo=32768 first=20000 span=40000
  read -r lo _ 2>/dev/null </proc/sys/net/ipv4/ip_local_port_range || true
  if ((lo > 11024)); then
    first=10000
    span=$((lo - first))
  fi
  for _ in $(seq 200); do
    p=$((first + RANDOM % span))
    [[ $used_ports == *" $p "* ]] && continue
    if command -v ss >/dev/null && [[ -n $(ss -Htan "( sport = :$p )" 2>/dev/null) ]]; then
      continue
    fi
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

# forget PID: drop PID from the processes to stop on exit.
forget() {
  local keep=() p
  for p in "${pids[@]}"; do
    [[ $p == "$1" ]] || keep+=("$p")
  done
  pids=("${keep[@]}")
}

# --- the fake catalogue, the baseline, the service ------------------------

# start_catalogue USERNAME: start the fake catalogue (answering after
# 20 ms) on a new port, with MOVIES_API_USERNAME=USERNAME and a random
# MOVIES_API_PASSWORD, exported for the service too; sets cat_port and
# cat_pid.
start_catalogue() {
  cat_port=$(free_port)
  export MOVIES_API_USERNAME=$1
  MOVIES_API_PASSWORD=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
  export MOVIES_API_PASSWORD
  "$tmp/fakecatalogue" -addr "127.0.0.1:$cat_port" -delay 20ms >"$tmp/fakecatalogue.log" 2>&1 &
  cat_pid=$!
  pids+=("$cat_pid")
  wait_http "http://127.0.0.1:$cat_port/" "$cat_pid" "$tmp/fakecatalogue.log"
}

# start_baseline: start the bare net/http baseline on a new port; sets
# base_pid and baseline (its URL).
start_baseline() {
  local port
  port=$(free_port)
  "$tmp/baseline" -addr "127.0.0.1:$port" >"$tmp/baseline.log" 2>&1 &
  base_pid=$!
  pids+=("$base_pid")
  baseline=http://127.0.0.1:$port
  wait_http "$baseline/" "$base_pid" "$tmp/baseline.log" 200
}

# start_server LOG DATABASE_URL [VAR=value...]: start the service ($tmp/movies)
# on a new port against the fake catalogue; sets server_pid and service.
start_server() {
  local logfile=$1 db=$2 port
  shift 2
  port=$(free_port)
  env "ADDR=127.0.0.1:$port" "DATABASE_URL=$db" \
    "MOVIES_API_URL=http://127.0.0.1:$cat_port/api/v1/maya/movies/" "$@" \
    "$tmp/movies" >"$logfile" 2>&1 &
  server_pid=$!
  pids+=("$server_pid")
  service=http://127.0.0.1:$port
  wait_http "$service/healthz" "$server_pid" "$logfile" 200
}

# pick_pprof: when profile is 1, a loopback address for the service's
# profiler in pprof_addr, and PPROF_ADDR set to it in the array pprof_env;
# both empty otherwise.
pick_pprof() {
  pprof_addr=""
  pprof_env=()
  if [[ ${profile:-0} == 1 ]]; then
    pprof_addr=127.0.0.1:$(free_port)
    pprof_env=("PPROF_ADDR=$pprof_addr")
  fi
}

# stop_server: SIGTERM the service and wait; sets server_status.
stop_server() {
  kill -TERM "$server_pid"
  server_status=0
  wait "$server_pid" || server_status=$?
  forget "$server_pid"
}

# --- results ---------------------------------------------------------------

# parse FILE: print "req/s p50_ms p99_ms non2xx socket_errors requests"
# from wrk's output.
parse() {
  awk '
    function ms(v, n) {
      n = v + 0
      if (v ~ /us$/) return n / 1000
      if (v ~ /ms$/) return n
      if (v ~ /s$/) return n * 1000
      if (v ~ /m$/) return n * 60000
      if (v ~ /h$/) return n * 3600000
      return n
    }
    /^Requests\/sec:/ { rps = $2 }
    /Latency Distribution/ { dist = 1 }
    dist && $1 == "50%" { p50 = ms($2) }
    dist && $1 == "99%" { p99 = ms($2) }
    /Non-2xx or 3xx responses:/ { non2xx = $NF }
    /Socket errors:/ { gsub(/,/, ""); errs = $4 + $6 + $8 + $10 }
    / requests in / { total = $1 }
    END { printf "%s %s %s %d %d %d\n", rps + 0, p50 + 0, p99 + 0, non2xx, errs, total }
  ' "$1"
}

# passed_settings: fill the array `passed` with the server settings that
# come from the environment rather than their defaults, for the report.
passed_settings() {
  passed=()
  local v
  for v in COUNTER_FLUSH_INTERVAL DB_MAX_OPEN_CONNS DB_MAX_IDLE_CONNS DB_CONN_MAX_LIFETIME \
    DB_CONN_MAX_IDLE_TIME TOKEN_TTL MOVIES_API_TIMEOUT MOVIES_API_MAX_ATTEMPTS SHUTDOWN_TIMEOUT JWT_SECRET; do
    if [[ -n ${!v:-} ]]; then
      if [[ $v == JWT_SECRET ]]; then passed+=("JWT_SECRET (set)"); else passed+=("$v=${!v}"); fi
    fi
  done
}

# cpu_model: the CPU's model name, or nothing.
cpu_model() {
  awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || true
}

# commit_name: the commit measured, and whether the tree had changes.
commit_name() {
  local commit
  commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
  if [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]]; then
    commit+=" + uncommitted changes"
  fi
  echo "$commit"
}
