#!/usr/bin/env bash
# Crowd benchmark: many users reading and writing their collections at
# once, against a bare net/http baseline.
#
#   bash bench/crowd.sh                          # from the repository root
#   BENCH_USERS=50 BENCH_DURATION=3s bash bench/crowd.sh     # a quick look
#   BENCH_POSTGRES=1 bash bench/crowd.sh         # SQLite, then PostgreSQL
#   BENCH_PROFILE=1 bash bench/crowd.sh          # also capture CPU profiles
#
# For each database it seeds BENCH_USERS users (300), each with
# BENCH_COLLECTIONS collections (3) of BENCH_MOVIES movies (10) with random
# genres, through the API (bench/seed), on a server started with bcrypt
# cost 4 so that seeding takes seconds. It then restarts the server with its
# defaults, as production runs it, and drives it with wrk (bench/crowd.lua):
# every request is for a random user, a write with the probability of the
# row's mix (BENCH_MIXES, in percent: "0 1 10"), a read otherwise.
#
#   reads   BENCH_READ_LIST  (50)  GET /collection/
#           BENCH_READ_GET   (38)  GET /collection/{uuid}/
#           BENCH_READ_COUNT (12)  GET /request-count/
#   writes  BENCH_WRITE_PUT  (70)  PUT /collection/{uuid}/, a rename
#           BENCH_WRITE_POST (30)  POST /collection/ with BENCH_MOVIES movies
#
# (weights, in percent of the reads or of the writes), then a last row of
# POST /collection/ alone. Each row runs the bare baseline and the service
# interleaved (A B A B) with the same script, wrk -t2 -c64 for
# BENCH_DURATION (8s). Answers are counted by status class: a 409 or a 429
# is not a success, and shows in the non-2xx column.
#
# Databases: SQLite always, a fresh file. PostgreSQL too when
# BENCH_DATABASE_URL is a postgres:// URL (used as it is: give it an empty
# database), or when BENCH_POSTGRES=1 or TEST_DATABASE_URL is set: then a
# database movies_bench is (re)created next to TEST_DATABASE_URL's, or, with
# neither set, on the local PostgreSQL of .ci/postgres.sh, started (and
# installed) by it when none answers on 127.0.0.1:5432. BENCH_POSTGRES=0:
# SQLite only; BENCH_SQLITE=0 with PostgreSQL: PostgreSQL only.
#
# Server settings not pinned here (COUNTER_FLUSH_INTERVAL, DB_MAX_OPEN_CONNS,
# ...) pass through from the environment and are listed in the report.
# The tables go to stdout and to bench/out/crowd.md, wrk's own output and
# the measuring server's log to bench/out/raw/crowd-*, CPU profiles
# (BENCH_PROFILE=1, taken during each row's second service run) to
# bench/out/crowd-*.cpu.pprof. Everything
# listens on 127.0.0.1 only, and every process started here is stopped on
# exit, Ctrl-C included.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

users=${BENCH_USERS:-300}
collections=${BENCH_COLLECTIONS:-3}
movies=${BENCH_MOVIES:-10}
duration=${BENCH_DURATION:-8s}
mixes=${BENCH_MIXES:-0 1 10}
read_list=${BENCH_READ_LIST:-50}
read_get=${BENCH_READ_GET:-38}
read_count=${BENCH_READ_COUNT:-12}
write_put=${BENCH_WRITE_PUT:-70}
write_post=${BENCH_WRITE_POST:-30}
profile=${BENCH_PROFILE:-0}
wrk_args=(-t2 -c64 "-d$duration" --timeout 10s --latency)

for v in users collections; do
  [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "BENCH_${v^^} must be a whole number of at least 1, not '${!v}'"
done
[[ $movies =~ ^[0-9]+$ ]] || die "BENCH_MOVIES must be a whole number, not '$movies'"
for v in read_list read_get read_count write_put write_post; do
  [[ ${!v} =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "BENCH_${v^^} must be a number, not '${!v}'"
done
awk -v a="$read_list" -v b="$read_get" -v c="$read_count" 'BEGIN {exit !(a + b + c > 0)}' ||
  die "the read weights add up to 0"
awk -v a="$write_put" -v b="$write_post" 'BEGIN {exit !(a + b > 0)}' ||
  die "the write weights add up to 0"
for m in $mixes; do
  [[ $m =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v m="$m" 'BEGIN {exit !(m <= 100)}' ||
    die "BENCH_MIXES holds write shares in percent, 0 to 100, not '$m'"
done

# Profile for most of a run: wrk's -d is seconds, or a number with s, m or h.
prof_secs=5
if [[ $duration =~ ^([0-9]+)s?$ ]]; then
  prof_secs=$((BASH_REMATCH[1] > 2 ? BASH_REMATCH[1] - 1 : BASH_REMATCH[1]))
elif [[ $duration =~ ^([0-9]+)m$ ]]; then
  prof_secs=$((BASH_REMATCH[1] * 60 - 1))
fi

need_tools
start_cleanup movies-crowd

# --- databases --------------------------------------------------------------

backends=("sqlite|SQLite (a fresh file)|$tmp/crowd.db")
pg_url=""
pg_label=""
if [[ ${BENCH_POSTGRES:-} == 0 ]]; then
  : # SQLite only, whatever else is set
elif [[ -n ${BENCH_DATABASE_URL:-} ]]; then
  [[ $BENCH_DATABASE_URL == postgres://* || $BENCH_DATABASE_URL == postgresql://* ]] ||
    die "BENCH_DATABASE_URL must be a postgres:// URL"
  pg_url=$BENCH_DATABASE_URL
  pg_label="database of BENCH_DATABASE_URL"
elif [[ ${BENCH_POSTGRES:-0} == 1 || -n ${TEST_DATABASE_URL:-} ]]; then
  if [[ -z ${TEST_DATABASE_URL:-} ]]; then
    if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then
      TEST_DATABASE_URL="postgres://postgres:postgres@127.0.0.1:5432/movies_test?sslmode=disable"
    else
      ((EUID == 0)) || die "BENCH_POSTGRES=1: no PostgreSQL on 127.0.0.1:5432, and starting one (.ci/postgres.sh) needs root; or set BENCH_DATABASE_URL"
      log "starting PostgreSQL (.ci/postgres.sh)"
      # shellcheck source=.ci/postgres.sh
      source "$root/.ci/postgres.sh" >&2
    fi
  fi
  command -v psql >/dev/null || die "psql is needed to create the benchmark database"
  [[ $TEST_DATABASE_URL =~ ^(postgres(ql)?://[^/]+)/[^?]*(\?.*)?$ ]] ||
    die "TEST_DATABASE_URL does not look like postgres://user:password@host:port/database"
  pg_url="${BASH_REMATCH[1]}/movies_bench${BASH_REMATCH[3]}"
  log "creating the database movies_bench"
  PGOPTIONS='-c client_min_messages=warning' psql -q "$TEST_DATABASE_URL" -c 'DROP DATABASE IF EXISTS movies_bench' -c 'CREATE DATABASE movies_bench' >&2 ||
    die "could not create the database movies_bench"
  pg_label="database movies_bench, fresh"
fi
if [[ -n $pg_url ]]; then
  if [[ ${BENCH_SQLITE:-1} == 0 ]]; then
    backends=()
  fi
  pg_version=$(psql -tAq "$pg_url" -c 'SHOW server_version' 2>/dev/null | awk '{print $1}' || true)
  backends+=("postgres|PostgreSQL${pg_version:+ $pg_version} ($pg_label)|$pg_url")
fi

# --- build ----------------------------------------------------------------

log "building the server and the programs in bench/"
go build -o "$tmp/movies" .
go build -o "$tmp/baseline" ./bench/baseline
go build -o "$tmp/fakecatalogue" ./bench/fakecatalogue
go build -o "$tmp/seed" ./bench/seed

# --- processes that serve every database ------------------------------------

# Pinned to their defaults: the benchmark measures what production runs.
unset BCRYPT_COST LOG_LEVEL PPROF_ADDR PUBLIC_URL

# The crowd never asks for /movies/; the fake catalogue is there so that
# the server runs fully configured, and nothing leaves the machine.
start_catalogue bench-catalogue
start_baseline
server_pid=""
service=""

# run_wrk FILE URL [script arguments...]: one wrk run of crowd.lua, its
# output kept in FILE. wrk runs in the background so that Ctrl-C or a
# SIGTERM stops it at once.
run_wrk() {
  local file=$1 url=$2 wpid
  shift 2
  wrk "${wrk_args[@]}" -s "$bench/crowd.lua" "$url" "$@" >"$file" 2>&1 &
  wpid=$!
  pids+=("$wpid")
  if ! wait "$wpid"; then
    cat "$file" >&2
    die "wrk failed against $url"
  fi
  forget "$wpid"
  grep -q '^crowd: statuses' "$file" || { cat "$file" >&2; die "crowd.lua reported nothing against $url"; }
  kill -0 "$server_pid" 2>/dev/null || { tail -n 20 "$server_log" >&2; die "the server exited"; }
}

# statuses FILE: print "2xx 3xx 4xx 5xx 409 429 503 other" from crowd.lua's line.
statuses() {
  awk '/^crowd: statuses/ {
    for (i = 3; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    print v["2xx"], v["3xx"], v["4xx"], v["5xx"], v["409"], v["429"], v["503"], v["other"]
  }' "$1"
}

# endpoint_stats LOG FROM TO: per endpoint, "kind requests p50 p99 codes"
# (ms; codes: the non-2xx answers as "STATUS: COUNT, ...", or -) from the
# service's request log lines FROM..TO.
endpoint_stats() {
  sed -n "$2,$3p" "$1" | awk '
    /"msg":"request"/ {
      m = ""; p = ""; s = 0; d = 0
      if (match($0, /"method":"[^"]*"/)) m = substr($0, RSTART + 10, RLENGTH - 11)
      if (match($0, /"path":"[^"]*"/)) p = substr($0, RSTART + 8, RLENGTH - 9)
      if (match($0, /"status":[0-9]+/)) s = substr($0, RSTART + 9, RLENGTH - 9) + 0
      if (match($0, /"duration_ms":[0-9.eE+-]+/)) d = substr($0, RSTART + 14, RLENGTH - 14) + 0
      k = "other"
      if (p ~ /^\/collection\/?$/) { if (m == "GET") k = "list"; else if (m == "POST") k = "post" }
      else if (p ~ /^\/collection\/[^\/]+\/?$/) { if (m == "GET") k = "get"; else if (m == "PUT") k = "put" }
      else if (p ~ /^\/request-count\/?$/ && m == "GET") k = "count"
      print k, d, s
    }' | sort -k1,1 -k2,2g | awk '
    function flush(  c, codes) {
      codes = ""
      for (c in bad) codes = codes (codes == "" ? "" : ", ") c ": " bad[c]
      if (n) printf "%s %d %.3f %.3f %s\n", k, n, d[int((n - 1) * 0.50) + 1], d[int((n - 1) * 0.99) + 1], (codes == "" ? "-" : codes)
      n = 0; split("", bad)
    }
    $1 != k { flush(); k = $1 }
    { d[++n] = $2 }
    $3 < 200 || $3 >= 300 { bad[$3]++ }
    END { flush() }'
}

# cpu_ticks PID...: the CPU time (user + system, in clock ticks) the
# processes and their children that have exited have used so far: a
# PostgreSQL backend that exits adds its time to the postmaster's.
cpu_ticks() {
  local pid t=0 stat
  local -a fields
  for pid in "$@"; do
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || continue
    stat=${stat##*) }
    read -r -a fields <<<"$stat"
    t=$((t + fields[11] + fields[12] + fields[13] + fields[14]))
  done
  echo "$t"
}

# db_ticks: cpu_ticks of every PostgreSQL process on this machine (0 on
# SQLite, where the database is the service's own work; and 0 for a
# PostgreSQL elsewhere, which this cannot see).
db_ticks() {
  if [[ $key == postgres ]]; then
    # shellcheck disable=SC2046
    cpu_ticks $(pgrep -x postgres)
  else
    echo 0
  fi
}

# --- one database -----------------------------------------------------------

mkdir -p "$raw"
rm -f "$raw"/crowd-*
if [[ $profile == 1 ]]; then
  rm -f "$out"/crowd-*.cpu.pprof
fi
sections=()
notes=()

# measure KEY NAME LABEL WRITE% PUT POST: one row, baseline and service
# interleaved, twice each.
measure() {
  local key=$1 name=$2 label=$3 write=$4 put=$5 post=$6
  local args=("$tmp/users-$key.txt" "$write" "$read_list" "$read_get" "$read_count" "$put" "$post" "$movies")
  local i prof_pid s b st from to f t0 d0
  local -a srv=() base=() sts=()
  local base_cpu=0 srv_cpu=0 db_cpu=0 base_n=0 srv_n=0
  sleep 0.3 # let the log writer flush the previous row
  from=$(($(wc -l <"$server_log") + 1))
  for i in 1 2; do
    f=$raw/crowd-$key-$name.baseline.$i.txt
    log "$backend_label, $label: baseline run $i"
    t0=$(cpu_ticks "$base_pid")
    run_wrk "$f" "$baseline" "${args[@]}"
    base_cpu=$((base_cpu + $(cpu_ticks "$base_pid") - t0))
    base+=("$(parse "$f")")
    base_n=$((base_n + ${base[-1]##* }))
    prof_pid=""
    if [[ $profile == 1 && $i == 2 ]]; then
      curl -s -o "$out/crowd-$key-$name.cpu.pprof" "http://$pprof_addr/debug/pprof/profile?seconds=$prof_secs" &
      prof_pid=$!
      pids+=("$prof_pid")
    fi
    f=$raw/crowd-$key-$name.service.$i.txt
    log "$backend_label, $label: service run $i"
    t0=$(cpu_ticks "$server_pid") d0=$(db_ticks)
    run_wrk "$f" "$service" "${args[@]}"
    srv_cpu=$((srv_cpu + $(cpu_ticks "$server_pid") - t0)) db_cpu=$((db_cpu + $(db_ticks) - d0))
    srv+=("$(parse "$f")")
    srv_n=$((srv_n + ${srv[-1]##* }))
    sts+=("$(statuses "$f")")
    if [[ -n $prof_pid ]]; then
      wait "$prof_pid" || log "$label: CPU profile capture failed"
      forget "$prof_pid"
    fi
  done
  sleep 0.3
  to=$(wc -l <"$server_log")

  # Means over the runs; failures summed. Fields: rps p50 p99 non2xx errs total.
  s=$(printf '%s\n' "${srv[@]}" | awk '{r+=$1; a+=$2; b+=$3; e+=$5; t+=$6; n++}
    END {printf "%.0f %.2f %.2f %d %d", r/n, a/n, b/n, e, t}')
  read -r s_rps s_p50 s_p99 s_errs s_total <<<"$s"
  b=$(printf '%s\n' "${base[@]}" | awk '{r+=$1; b+=$3; n2+=$4; e+=$5; n++}
    END {printf "%.0f %.2f %d %d", r/n, b/n, n2, e}')
  read -r b_rps b_p99 b_non2xx b_errs <<<"$b"
  if ((b_non2xx + b_errs)); then
    log "$label: the baseline had $b_non2xx non-2xx answers and $b_errs socket errors"
  fi
  st=$(printf '%s\n' "${sts[@]}" | awk '{for (i = 1; i <= NF; i++) v[i] += $i}
    END {print v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8]}')
  local c2 c3 c4 c5 c409 c429 c503 cother non2xx detail=()
  read -r c2 c3 c4 c5 c409 c429 c503 cother <<<"$st"
  non2xx=$((c3 + c4 + c5 + cother))
  if ((c3)); then detail+=("3xx $c3"); fi
  if ((c4)); then
    if ((c409 + c429)); then detail+=("4xx $c4 (409: $c409, 429: $c429)"); else detail+=("4xx $c4"); fi
  fi
  if ((c5)); then
    if ((c503)); then detail+=("5xx $c5 (503: $c503)"); else detail+=("5xx $c5"); fi
  fi
  if ((cother)); then detail+=("other $cother"); fi
  local cell="$non2xx / $s_total" d
  for d in "${detail[@]}"; do
    if [[ $cell == *:* ]]; then cell+=", $d"; else cell+=": $d"; fi
  done

  local ratio p99_ratio
  ratio=$(awk -v s="$s_rps" -v b="$b_rps" 'BEGIN {printf "%.2f", (b > 0 ? s / b : 0)}')
  p99_ratio=$(awk -v s="$s_p99" -v b="$b_p99" 'BEGIN {printf "%.2f", (b > 0 ? s / b : 0)}')
  rows+=("| $label | $s_rps | $b_rps | **$ratio** | $s_p50 | $s_p99 | $b_p99 | $p99_ratio | $cell | $s_errs |")

  # Server-side latency per endpoint, from the request log.
  local kind n codes p50 p99 cells=""
  declare -A ep=()
  while read -r kind n p50 p99 codes; do
    if [[ $codes == - ]]; then
      ep[$kind]="$p50 / $p99 ($n)"
    else
      ep[$kind]="$p50 / $p99 ($n; $codes)"
    fi
  done < <(endpoint_stats "$server_log" "$from" "$to")
  for kind in list get count put post; do
    cells+=" ${ep[$kind]:-—} |"
  done
  ep_rows+=("| $label |$cells")

  # CPU per request answered, from /proc: clock ticks to microseconds.
  cpu_rows+=("$(awk -v l="$label" -v hz="$(getconf CLK_TCK)" -v s="$srv_cpu" -v d="$db_cpu" -v sn="$srv_n" \
    -v b="$base_cpu" -v bn="$base_n" -v pg="$([[ $key == postgres ]] && echo 1)" 'BEGIN {
      u = 1e6 / hz; sv = sn ? s * u / sn : 0; db = sn ? d * u / sn : 0; bv = bn ? b * u / bn : 0
      printf "| %s | %.0f | %s | %.0f | %.0f | **%.1f** |", l, sv, (pg ? sprintf("%.0f", db) : "—"), sv + db, bv, (bv ? (sv + db) / bv : 0)
    }')")

  local sent
  sent=$(for i in 1 2; do
    sed -n 's/^crowd: sent //p' "$raw/crowd-$key-$name.service.$i.txt"
  done | awk '{for (i = 1; i <= NF; i++) {split($i, kv, "="); v[kv[1]] += kv[2]}}
    END {printf "list %d, get %d, count %d, put %d, post %d", v["list"], v["get"], v["count"], v["put"], v["post"]}')
  runs+=("| $label | baseline $(printf '%s\n' "${base[@]}" | awk '{printf "%s%.0f", (NR>1 ? ", " : ""), $1}'); service $(printf '%s\n' "${srv[@]}" | awk '{printf "%s%.0f", (NR>1 ? ", " : ""), $1}') | $sent |")
}

# run_backend KEY LABEL DATABASE_URL: seed, then measure every row.
run_backend() {
  local key=$1 db=$3
  backend_label=$2
  rows=()
  ep_rows=()
  cpu_rows=()
  runs=()

  # Seeding: cheap hashes, and no limit on registrations from one address.
  server_log=$tmp/seed-$key.log
  start_server "$server_log" "$db" BCRYPT_COST=4 AUTH_RATE_PER_IP=0 LOG_LEVEL=warn
  log "$backend_label: seeding $users users with $collections collections of $movies movies"
  local t0 t1 seed_secs
  t0=$(date +%s.%N)
  "$tmp/seed" -url "$service" -users "$users" -collections "$collections" -movies "$movies" \
    -parallel 8 -out "$tmp/users-$key.txt" >&2 ||
    { tail -n 20 "$server_log" >&2; die "seeding failed"; }
  t1=$(date +%s.%N)
  seed_secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
  stop_server
  ((server_status == 0)) || { tail -n 20 "$server_log" >&2; die "the seeding server exited with status $server_status"; }

  # Measuring: the server as production runs it.
  server_log=$tmp/server-$key.log
  pick_pprof
  start_server "$server_log" "$db" "${pprof_env[@]}"
  log "$backend_label: server on $service (pid $server_pid), baseline on $baseline"
  local token id code
  read -r token id _ <"$tmp/users-$key.txt"
  code=$(curl -s -o "$tmp/answer" -w '%{http_code}' -H "Authorization: Bearer $token" "$service/collection/$id/")
  [[ $code == 200 ]] || die "a seeded collection answers $code after the restart: $(head -c 300 "$tmp/answer")"
  grep -q '"movies":\[' "$tmp/answer" || die "a seeded collection has no movies list: $(head -c 300 "$tmp/answer")"

  local m label
  for m in $mixes; do
    if awk -v m="$m" 'BEGIN {exit !(m == 0)}'; then label="reads only (0% writes)"; else label="$m% writes"; fi
    measure "$key" "mix$m" "$label" "$m" "$write_put" "$write_post"
  done
  measure "$key" post "POST /collection/ alone" 100 0 1

  local rss log_lines warnings
  rss=$(awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$server_pid/status")
  stop_server
  cp "$server_log" "$raw/crowd-$key-server.log"
  log_lines=$(wc -l <"$server_log")
  grep -v '"level":"INFO"' "$server_log" | head -n 200 >"$out/crowd-$key-server-warnings.log" || true
  warnings=$(grep -vc '"level":"INFO"' "$server_log" || true)

  sections+=("$(
    echo "### $backend_label"
    echo
    echo "Seeded in ${seed_secs} s. Rows in this order, on the same data: each row's creates add to what the next one reads."
    echo
    echo "| load | service req/s | baseline req/s | ratio | service p50 | service p99 | baseline p99 | p99 ratio | service non-2xx / requests | socket errors |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    printf '%s\n' "${rows[@]}"
    echo
    echo "Server-side latency by endpoint, p50 / p99 in ms (requests; non-2xx as status: count), from the service's request log over both service runs of a row."
    echo "It counts requests wrk cut off at the end of a run too, which the server answers 503 (client gone) and wrk never sees."
    echo
    echo "| load | \`GET /collection/\` | \`GET /collection/{uuid}/\` | \`GET /request-count/\` | \`PUT /collection/{uuid}/\` | \`POST /collection/\` |"
    echo "|---|---:|---:|---:|---:|---:|"
    printf '%s\n' "${ep_rows[@]}"
    echo
    echo "CPU time per request, in µs, from /proc over both runs of each side: on cores shared with wrk, req/s rises only as this falls, and it tells the service's share from the database's."
    echo
    echo "| load | service | PostgreSQL | service + database | baseline | ratio to baseline |"
    echo "|---|---:|---:|---:|---:|---:|"
    printf '%s\n' "${cpu_rows[@]}"
    echo
    echo "Server peak RSS (VmHWM): $rss MiB; $log_lines log lines, $warnings not at INFO level; exit status $server_status after SIGTERM."
    echo
    echo "<details><summary>Every run (req/s, in order) and the requests sent</summary>"
    echo
    echo "| load | runs | service requests sent, by kind |"
    echo "|---|---|---|"
    printf '%s\n' "${runs[@]}"
    echo
    echo "</details>"
  )")
  notes+=("$backend_label: first 200 server lines not at INFO level in bench/out/crowd-$key-server-warnings.log.")
}

for b in "${backends[@]}"; do
  IFS='|' read -r key label db <<<"$b"
  run_backend "$key" "$label" "$db"
done

# --- report ---------------------------------------------------------------

commit=$(commit_name)
cpu=$(cpu_model)
passed_settings
{
  echo "Crowd benchmark of $commit on $(date -u +%Y-%m-%dT%H:%MZ): $(nproc) CPUs${cpu:+ ($cpu)}, server, database and wrk on the same machine."
  echo "$users users, each with $collections collections of $movies movies (random genres), seeded through the API; then a server with its defaults (bcrypt cost 10, info logs to a file)${passed[*]:+, with ${passed[*]}}."
  echo "\`wrk -t2 -c64 -d$duration --timeout 10s --latency -s bench/crowd.lua\`: every request for a random user;" \
    "reads $read_list/$read_get/$read_count \`GET /collection/\` / \`GET /collection/{uuid}/\` / \`GET /request-count/\`," \
    "writes $write_put/$write_post \`PUT /collection/{uuid}/\` (rename) / \`POST /collection/\` ($movies movies)," \
    "the write share per row. Baseline (bare net/http, same requests) and service interleaved A B A B; req/s and latencies (ms) are the means of the two runs, non-2xx and errors their sums."
  for s in "${sections[@]}"; do
    echo
    echo "$s"
  done
} >"$out/crowd.md"

echo
cat "$out/crowd.md"
echo
echo "Report written to bench/out/crowd.md; wrk's output and the server's log in bench/out/raw/crowd-*."
printf '%s\n' "${notes[@]}"
if [[ $profile == 1 ]]; then
  echo "CPU profiles ($prof_secs s, during each row's second service run):"
  ls -1 "$out"/crowd-*.cpu.pprof 2>/dev/null | sed "s|^$root/|  |" || true
  echo "View one with: go tool pprof -http=127.0.0.1:0 bench/out/crowd-sqlite-mix10.cpu.pprof"
fi
