#!/usr/bin/env bash
# Load benchmark of the service against a bare net/http baseline (issue 6).
#
#   bash bench/run.sh                       # from the repository root
#   BENCH_DURATION=10s bash bench/run.sh    # longer wrk runs (default 5s)
#   BENCH_PROFILE=1 bash bench/run.sh       # also capture CPU profiles
#
# It builds the server and the helpers in bench/, starts the server on a
# fresh SQLite database with its default settings (bcrypt cost, info logging
# to a file), a fake catalogue answering after 20 ms, and a bare baseline
# server; seeds a user with 5 collections of 10 movies; then drives each
# endpoint with wrk, baseline and service interleaved (A B A B) so that a
# noisy machine affects both alike. The table goes to stdout and to
# bench/out/latest.md, wrk's own output to bench/out/raw/.
#
# Server settings not pinned here (COUNTER_FLUSH_INTERVAL, DB_MAX_OPEN_CONNS,
# ...) pass through from the environment and are listed in the table's
# header. Everything listens on 127.0.0.1 only, and every process started
# here is stopped on exit, Ctrl-C included.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

duration=${BENCH_DURATION:-5s}
profile=${BENCH_PROFILE:-0}
wrk_args=(-t2 "-d$duration" --timeout 10s --latency)

need_tools
start_cleanup movies-bench
server_pid=""

# --- build ----------------------------------------------------------------

log "building the server and the helpers"
go build -o "$tmp/movies" .
go build -o "$tmp/baseline" ./bench/baseline
go build -o "$tmp/fakecatalogue" ./bench/fakecatalogue

# --- start ----------------------------------------------------------------

# Pinned to their defaults: the benchmark measures what production runs.
unset BCRYPT_COST LOG_LEVEL PPROF_ADDR PUBLIC_URL

start_catalogue bench-catalogue
start_baseline

# AUTH_RATE_PER_IP=0: every request comes from 127.0.0.1, and the
# per-address limit would answer most registrations 429.
pick_pprof
start_server "$tmp/server.log" "$tmp/bench.db" AUTH_RATE_PER_IP=0 "${pprof_env[@]}"
log "server on $service (pid $server_pid), baseline on $baseline, fake catalogue on 127.0.0.1:$cat_port"

# --- seed -----------------------------------------------------------------

# api METHOD PATH [BODY]: call the service; the body of the answer goes to
# $tmp/answer, the status to stdout.
api() {
  local args=(-s -o "$tmp/answer" -w '%{http_code}' -X "$1" -H 'Content-Type: application/json')
  [[ -n ${TOKEN:-} ]] && args+=(-H "Authorization: Bearer $TOKEN")
  [[ $# -ge 3 ]] && args+=(--data-binary "$3")
  curl "${args[@]}" "$service$2"
}
expect() { # expect STATUS WHAT: check the last api call's status
  [[ $code == "$1" ]] || die "$2: status $code, want $1: $(head -c 300 "$tmp/answer")"
}
json_field() { sed -n "s/.*\"$1\":\"\\([^\"]*\\)\".*/\\1/p" "$tmp/answer"; }

log "seeding a user with 5 collections of 10 movies"
user='{"username":"bench","password":"correct horse battery"}'
code=$(api POST /register/ "$user"); expect 201 "register"
code=$(api POST /login/ "$user"); expect 200 "login"
TOKEN=$(json_field access_token)
[[ -n $TOKEN ]] || die "login answered no access_token"

genres=("Action,Drama" "Comedy,Romance" "Drama" "Action,Thriller,Crime" "Science Fiction,Adventure"
  "Animation,Family,Comedy" "" "Drama,History,War" "Horror,Mystery,Thriller" "Documentary,Music")
titles=("Evening Shadows" "The Long Road" "Paper Moons" "Harbour Lights" "Iron Meadow"
  "Quiet Storm" "Glass Kingdom" "Northern Line" "Salt and Smoke" "The Last Orchard")
collection_id=""
for c in 1 2 3 4 5; do
  movies=""
  for m in 0 1 2 3 4 5 6 7 8 9; do
    uuid=$(cat /proc/sys/kernel/random/uuid)
    movies+="${movies:+,}{\"uuid\":\"$uuid\",\"title\":\"${titles[m]} $c\","
    movies+="\"description\":\"A film about ${titles[m],,}, number $m of collection $c.\","
    movies+="\"genres\":\"${genres[(m + c) % 10]}\"}"
  done
  body="{\"title\":\"Collection $c\",\"description\":\"Seeded for the benchmark\",\"movies\":[$movies]}"
  code=$(api POST /collection/ "$body"); expect 201 "create collection $c"
  id=$(json_field collection_uuid)
  collection_id=${collection_id:-$id}
done
[[ -n $collection_id ]] || die "create collection answered no collection_uuid"
code=$(api GET "/collection/$collection_id/"); expect 200 "get collection"
grep -q '"movies":\[{' "$tmp/answer" || die "seeded collection has no movies: $(head -c 300 "$tmp/answer")"

# --- measure --------------------------------------------------------------

mkdir -p "$raw"
if [[ $profile == 1 ]]; then
  rm -f "$out"/*.cpu.pprof
fi

# run_wrk FILE URL TAG [wrk options...]: one wrk run, its output kept in
# FILE. TAG is passed to the script (register.lua makes names unique with it).
run_wrk() {
  local file=$1 url=$2 tag=$3
  shift 3
  if ! wrk "${wrk_args[@]}" "$@" "$url" "$tag" >"$file" 2>&1; then
    cat "$file" >&2
    die "wrk failed against $url"
  fi
  kill -0 "$server_pid" 2>/dev/null || { tail -n 20 "$tmp/server.log" >&2; die "the server exited"; }
}

rows=()   # one Markdown row per endpoint
runs=()   # one Markdown row per endpoint with every run's req/s

# measure NAME LABEL PATH BASELINE(yes|no) AUTH(yes|no) CONNECTIONS [SCRIPT]:
# drive the baseline and the service, interleaved, twice each, and add a
# table row.
measure() {
  local name=$1 label=$2 path=$3 with_baseline=$4 auth=$5 conns=$6 script=${7:-}
  local opts=("-c$conns")
  [[ -n $script ]] && opts+=(-s "$bench/$script")
  [[ $auth == yes ]] && opts+=(-H "Authorization: Bearer $TOKEN")
  local i prof_pid s b
  local -a srv=() base=()
  for i in 1 2; do
    if [[ $with_baseline == yes ]]; then
      log "$label: baseline run $i"
      run_wrk "$raw/$name.baseline.$i.txt" "$baseline$path" "b$i" "${opts[@]}"
      base+=("$(parse "$raw/$name.baseline.$i.txt")")
    fi
    prof_pid=""
    if [[ $profile == 1 && $i == 2 ]]; then
      curl -s -o "$out/$name.cpu.pprof" "http://$pprof_addr/debug/pprof/profile?seconds=5" &
      prof_pid=$!
      pids+=("$prof_pid")
    fi
    log "$label: service run $i"
    run_wrk "$raw/$name.service.$i.txt" "$service$path" "s$i" "${opts[@]}"
    srv+=("$(parse "$raw/$name.service.$i.txt")")
    if [[ -n $prof_pid ]]; then
      wait "$prof_pid" || log "$label: CPU profile capture failed"
    fi
  done

  # Means over the runs; failures summed. Fields: rps p50 p99 non2xx errs total.
  s=$(printf '%s\n' "${srv[@]}" | awk '{r+=$1; a+=$2; b+=$3; n2+=$4; e+=$5; t+=$6; n++}
    END {printf "%.0f %.2f %.2f %d %d %d", r/n, a/n, b/n, n2, e, t}')
  read -r s_rps s_p50 s_p99 s_non2xx s_errs s_total <<<"$s"
  local runs_text
  runs_text=$(printf '%s\n' "${srv[@]}" | awk '{printf "%s%.0f", (NR>1 ? ", " : ""), $1}')
  if [[ $with_baseline == yes ]]; then
    b=$(printf '%s\n' "${base[@]}" | awk '{r+=$1; a+=$2; b+=$3; n2+=$4; e+=$5; n++}
      END {printf "%.0f %.2f %.2f %d %d", r/n, a/n, b/n, n2, e}')
    read -r b_rps _ b_p99 b_non2xx b_errs <<<"$b"
    if ((b_non2xx + b_errs)); then
      log "$label: the baseline had $b_non2xx non-2xx answers and $b_errs socket errors"
    fi
    local ratio p99_ratio
    ratio=$(awk -v s="$s_rps" -v b="$b_rps" 'BEGIN {printf "%.2f", (b > 0 ? s / b : 0)}')
    p99_ratio=$(awk -v s="$s_p99" -v b="$b_p99" 'BEGIN {printf "%.2f", (b > 0 ? s / b : 0)}')
    rows+=("| \`$label\` | $s_rps | $b_rps | **$ratio** | $s_p50 | $s_p99 | $b_p99 | $p99_ratio | $s_non2xx / $s_total | $s_errs |")
    runs_text="baseline $(printf '%s\n' "${base[@]}" | awk '{printf "%s%.0f", (NR>1 ? ", " : ""), $1}'); service $runs_text"
  else
    rows+=("| \`$label\` | $s_rps | — | — | $s_p50 | $s_p99 | — | — | $s_non2xx / $s_total | $s_errs |")
    runs_text="service $runs_text"
  fi
  runs+=("| \`$label\` | $runs_text |")
}

measure request-count "GET /request-count/" /request-count/ yes yes 64
measure collection-list "GET /collection/" /collection/ yes yes 64
measure collection-get "GET /collection/{uuid}/" "/collection/$collection_id/" yes yes 64
# A user may keep 1,000 collections: the creates are spread over many
# users, each request for a random one of them; enough that none reaches
# the limit in two runs at 15,000 creates a second (two thirds of it).
log "registering 256 users for the creates"
post_tokens=$tmp/post-tokens
: >"$post_tokens"
seed_token=$TOKEN
TOKEN=""
for i in $(seq 256); do
  code=$(api POST /register/ "{\"username\":\"poster$i\",\"password\":\"correct horse\"}")
  expect 201 "register poster$i"
  json_field access_token >>"$post_tokens"
done
TOKEN=$seed_token
export BENCH_POST_TOKENS=$post_tokens
measure collection-create "POST /collection/" /collection/ yes no 64 post_collection.lua
measure movies "GET /movies/" /movies/ yes yes 64 movies.lua
# Registration is bcrypt-bound: with 64 connections every request waits for
# some 64 hashes to share 2 cores, longer than a run, so few complete within
# it and the cut-off ones keep the server busy into the next run. 8
# connections keep both cores busy and the count honest.
measure register "POST /register/" /register/ no no 8 register.lua

# --- report ---------------------------------------------------------------

rss=$(awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$server_pid/status")

# Stop the server now, to report whether it shut down cleanly.
stop_server

log_lines=$(wc -l <"$tmp/server.log")
grep -v '"level":"INFO"' "$tmp/server.log" | head -n 200 >"$out/server-warnings.log" || true
warnings=$(grep -vc '"level":"INFO"' "$tmp/server.log" || true)

commit=$(commit_name)
cpu=$(cpu_model)
passed_settings

{
  echo "Benchmark of $commit on $(date -u +%Y-%m-%dT%H:%MZ): $(nproc) CPUs${cpu:+ ($cpu)}, server and wrk on the same machine."
  echo "\`wrk -t2 -c64 -d$duration --timeout 10s --latency\` (\`-c8\` for \`POST /register/\`), baseline and service interleaved A B A B; req/s and latencies (ms) are the means of the two runs."
  echo "Server defaults (bcrypt cost 10, info logs to a file)${passed[*]:+, with ${passed[*]}}; fake catalogue answering after 20 ms."
  echo
  echo "| endpoint | service req/s | baseline req/s | ratio | service p50 | service p99 | baseline p99 | p99 ratio | service non-2xx | socket errors |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
  printf '%s\n' "${rows[@]}"
  echo
  echo "Server peak RSS (VmHWM): $rss MiB."
  echo
  echo "\`GET /movies/\` waits 20 ms for the fake catalogue on each call (pages drawn from 1..200), so 64 connections cap it near 64 / 0.020 s = 3,200 req/s: its ratio measures that wait, not the server."
  echo
  echo "<details><summary>Every run (req/s, in order)</summary>"
  echo
  echo "| endpoint | runs |"
  echo "|---|---|"
  printf '%s\n' "${runs[@]}"
  echo
  echo "</details>"
} >"$out/latest.md"

echo
cat "$out/latest.md"
echo
echo "Table written to bench/out/latest.md; wrk's output in bench/out/raw/."
echo "Server: $log_lines log lines, $warnings not at INFO level (first 200 in bench/out/server-warnings.log); exit status $server_status after SIGTERM."
if [[ $profile == 1 ]]; then
  echo "CPU profiles (5 s, during each endpoint's second service run):"
  ls -1 "$out"/*.cpu.pprof 2>/dev/null | sed "s|^$root/|  |" || true
  echo "View one with: go tool pprof -http=127.0.0.1:0 bench/out/collection-list.cpu.pprof"
fi
