#!/usr/bin/env bash
# Hostile users: what a user who sends oversized bodies, lists a maximal
# collection set over and over, or floods the sign-up endpoint does to
# everyone else. Each part measures the same thing without the attack
# first, then during it, in the same run.
#
#   bash bench/hostile.sh                              # from the repository root
#   HOSTILE_DURATION=3s bash bench/hostile.sh          # a quick look (default 10s)
#   HOSTILE_COLLECTIONS=200 bash bench/hostile.sh      # fewer collections to list (default 1000)
#
# 1. Bombs. A bystander with 3 collections reads GET /collection/ in a loop
#    (wrk -t1 -c1) alone, then while 16 connections send POST /collection/
#    bodies over the limits as fast as they can: 6 with one movie whose
#    genres are "g0,g1,...,g39999", 5 with 1,001 movies, 5 with a
#    description of 2,001 characters (bench/hostile_bomb.lua). Reported:
#    the bystander's latency alone and during the bombs, the bombs' statuses
#    and latency, and the server's CPU time (utime + stime from
#    /proc/PID/stat) while idle, alone, during the bombs, and over the 2 s
#    after the bombers stop.
# 2. Maximal lists. One user creates HOSTILE_COLLECTIONS collections (1000,
#    the per-user cap) whose title (200 characters) and description (2,000)
#    are all "<", and whose 12 movies carry 100 distinct genres of 20
#    bytes, no genre in two collections, within HOSTILE_SEED_BUDGET seconds (60; at least 200
#    collections or the run stops), then 8 connections list them for
#    HOSTILE_DURATION (wrk -t2 -c8). Reported: the server's VmRSS before,
#    its peak (VmHWM, reset through /proc/PID/clear_refs just before, and
#    VmRSS sampled every 0.2 s) and after, the list's size, requests/s.
# 3. Registration flood. A user logs in 20 times in a row alone, then in a
#    row again while 120 connections register new usernames for
#    HOSTILE_DURATION (bench/hostile_register.lua). BCRYPT_COST stays at its
#    default (10), AUTH_RATE_PER_IP=0 so that the per-address limit does not
#    hide the effect of hashing. Reported: the logins' latency and statuses,
#    the registrations' statuses (201, or 503 with Retry-After when shed).
# 4. The per-address limit, at its default (AUTH_RATE_PER_IP=60): 70 quick
#    register/login requests from one address, one registration then
#    logins, the statuses and the first 429.
#
# Each part runs its own server, started with its defaults on a fresh
# SQLite database, with only the setting the part names changed; the
# service's request log goes to a file. A fake catalogue on loopback stands
# in for the real one (no part asks for /movies/). Server settings not
# pinned here (COUNTER_FLUSH_INTERVAL, DB_MAX_OPEN_CONNS, ...) pass through
# from the environment and are listed in the report. The report goes to
# stdout and to bench/out/hostile.md, wrk's own output to
# bench/out/raw/hostile-*. Everything listens on 127.0.0.1 only, and every
# process started here is stopped on exit, Ctrl-C included.
set -euo pipefail

# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"

duration=${HOSTILE_DURATION:-10s}
target=${HOSTILE_COLLECTIONS:-1000}
seed_budget=${HOSTILE_SEED_BUDGET:-60}

[[ $duration =~ ^([1-9][0-9]*)s?$ ]] || die "HOSTILE_DURATION must be whole seconds, such as 10s, not '$duration'"
secs=${BASH_REMATCH[1]}
duration=${secs}s
[[ $target =~ ^[1-9][0-9]*$ ]] && ((target >= 200 && target <= 1000)) ||
  die "HOSTILE_COLLECTIONS must be a whole number from 200 to 1000, not '$target'"
[[ $seed_budget =~ ^[1-9][0-9]*$ ]] || die "HOSTILE_SEED_BUDGET must be whole seconds, not '$seed_budget'"

need_tools
start_cleanup movies-hostile

# --- build ----------------------------------------------------------------

log "building the server and the fake catalogue"
go build -o "$tmp/movies" .
go build -o "$tmp/fakecatalogue" ./bench/fakecatalogue

# Pinned to their defaults: the benchmark measures what production runs.
# AUTH_RATE_PER_IP is set by each part.
unset BCRYPT_COST LOG_LEVEL PPROF_ADDR PUBLIC_URL AUTH_RATE_PER_IP LOGIN_MAX_FAILURES LOGIN_LOCKOUT

start_catalogue bench-catalogue

hz=$(getconf CLK_TCK)
tag=$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')
json=(-H "Content-Type: application/json")

# start_part NAME [VAR=value...]: start the service on a new port and a
# fresh database; sets server_pid, server_log and service.
server_pid=""
server_log=""
service=""
start_part() {
  server_log=$tmp/server-$1.log
  start_server "$server_log" "$tmp/$1.db" "${@:2}"
}

# stop_part NAME: stop the service (stop_server); add the log's lines not
# at INFO level, and its 5xx answers, to the notes.
stop_part() {
  stop_server
  local warn n5xx n503
  warn=$(grep -v '"level":"INFO"' "$server_log" | grep -vc 'catalogue credentials' || true)
  n503=$(grep -c '"status":503' "$server_log" || true)
  n5xx=$(grep -c '"status":5[0-9][0-9]' "$server_log" || true)
  server_notes+=("$1: exit status $server_status after SIGTERM; $(wc -l <"$server_log") log lines, $warn not at INFO level; in the request log $n503 answers 503 and $((n5xx - n503)) other 5xx")
  if ((n5xx > n503)); then
    check FAIL "$1: $((n5xx - n503)) answers 5xx other than 503 in the server's request log"
  fi
  if ((warn)); then
    grep -v '"level":"INFO"' "$server_log" | head -n 5 | cut -c1-400 >>"$tmp/warnings"
  fi
}
server_notes=()
: >"$tmp/warnings"

alive() {
  kill -0 "$server_pid" 2>/dev/null || { tail -n 20 "$server_log" >&2; die "the server exited"; }
}

# register NAME: register NAME and print its access token.
register() {
  local code
  code=$(curl -s -o "$tmp/answer" -w '%{http_code}' "${json[@]}" \
    -d "{\"username\":\"$1\",\"password\":\"correct horse battery\"}" "$service/register/")
  [[ $code == 201 ]] || die "registering $1 answered $code: $(head -c 300 "$tmp/answer")"
  sed -n 's/.*"access_token":"\([^"]*\)".*/\1/p' "$tmp/answer"
}

# cpu_ticks: the server's user + system CPU time so far, in clock ticks.
cpu_ticks() {
  awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$server_pid/stat"
}
secs_of() { awk -v t="$1" -v hz="$hz" 'BEGIN {printf "%.2f", t / hz}'; }

# status_kb FIELD: a field of /proc/PID/status (VmRSS, VmHWM), in kB.
status_kb() {
  awk -v f="$1:" '$1 == f {print $2}' "/proc/$server_pid/status"
}
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

# run_wrk FILE WRK_ARGUMENTS...: start wrk in the background (so that
# Ctrl-C stops it at once), its output in FILE; sets wrk_pid.
run_wrk() {
  local file=$1
  shift
  wrk --timeout 10s --latency "$@" >"$file" 2>&1 &
  wrk_pid=$!
  pids+=("$wrk_pid")
}

# wait_wrk PID FILE: wait for a wrk started by run_wrk.
wait_wrk() {
  if ! wait "$1"; then
    cat "$2" >&2
    die "wrk failed ($2)"
  fi
  forget "$1"
}

# hostile_line FILE KEY: the value of KEY=value on the "hostile: statuses"
# line of a wrk run.
hostile_line() {
  awk -v k="$2" '/^hostile: statuses/ {
    for (i = 3; i <= NF; i++) { split($i, kv, "="); if (kv[1] == k) print kv[2] }
  }' "$1"
}

# numbers FILE: "n p50 p99 max" of the numbers in FILE, one a line.
numbers() {
  sort -g "$1" | awk '{v[++n] = $1}
    END {
      if (!n) { print 0, 0, 0, 0; exit }
      printf "%d %.1f %.1f %.1f\n", n, v[int((n - 1) * 0.50) + 1], v[int((n - 1) * 0.99) + 1], v[n]
    }'
}

# route_stats LOG FROM TO ROUTE: "n p50 p99 max codes" of the server's
# request log lines FROM..TO for ROUTE ("POST /collection/"); durations in
# ms, codes as "status: count, ...".
route_stats() {
  sed -n "$2,$3p" "$1" | { grep -F "\"route\":\"$4\"" || true; } | awk '
    {
      s = 0; d = 0
      if (match($0, /"status":[0-9]+/)) s = substr($0, RSTART + 9, RLENGTH - 9) + 0
      if (match($0, /"duration_ms":[0-9.eE+-]+/)) d = substr($0, RSTART + 14, RLENGTH - 14) + 0
      print d, s
    }' | sort -g | awk '
    { d[++n] = $1; c[$2]++ }
    END {
      codes = ""
      for (s in c) codes = codes (codes == "" ? "" : ", ") s ": " c[s]
      if (!n) { print 0, 0, 0, 0, "-"; exit }
      printf "%d %.2f %.2f %.2f %s\n", n, d[int((n - 1) * 0.50) + 1], d[int((n - 1) * 0.99) + 1], d[n], codes
    }'
}

lines() { wc -l <"$server_log"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.3g", a / b; else print "—"}'; }

mkdir -p "$raw"
rm -f "$raw"/hostile-*
checks=()
check() { # check OK|FAIL TEXT
  checks+=("- **$1** $2")
}

# --- 1. bombs -------------------------------------------------------------

log "part 1: bystander latency during 16 concurrent bombs"
start_part bombs AUTH_RATE_PER_IP=0
bystander=$(register "bystander$tag")
attacker=$(register "attacker$tag")
genres=(Action Drama Comedy Thriller Romance Horror Western Crime)
for c in 1 2 3; do
  m=""
  for i in $(seq 10); do
    m+="${m:+,}{\"uuid\":\"$(printf '%08x-0000-4000-8000-%012x' "$c" "$i")\",\"title\":\"Film $c.$i\",\"description\":\"A film.\",\"genres\":\"${genres[i % 8]},${genres[(i + c) % 8]}\"}"
  done
  code=$(curl -s -o "$tmp/answer" -w '%{http_code}' "${json[@]}" -H "Authorization: Bearer $bystander" \
    -d "{\"title\":\"Shelf $c\",\"description\":\"Films to see\",\"movies\":[$m]}" "$service/collection/")
  [[ $code == 201 ]] || die "creating the bystander's collection answered $code: $(head -c 300 "$tmp/answer")"
done
by_auth=(-H "Authorization: Bearer $bystander")
curl -s -o /dev/null "${by_auth[@]}" "$service/collection/" # warm

# Idle: nothing runs.
sleep 0.5
t0=$(cpu_ticks)
sleep 2
idle_cpu=$(($(cpu_ticks) - t0))

# The bystander alone.
f_alone=$raw/hostile-bystander-alone.txt
t0=$(cpu_ticks)
run_wrk "$f_alone" -t1 -c1 "-d$duration" "${by_auth[@]}" "$service/collection/"
wait_wrk "$wrk_pid" "$f_alone"
alone_cpu=$(($(cpu_ticks) - t0))
alive
read -r a_rps a_p50 a_p99 a_non2xx a_errs a_total <<<"$(parse "$f_alone")"

# bomb_run KEY NICE: the bystander during the bombs, the bombers (under
# nice NICE) starting 1 s before it and stopping 1 s after it. Sets, in the
# associative array r, KEY.field for the bystander (rps p50 p99 non2xx
# errs), the server's CPU (cpu, after: the 2 s after the bombers stop), the
# server-side latencies (post, get) and per bomb kind (KEY.KIND.row,
# KEY.KIND.answered, KEY.KIND.n400, KEY.KIND.p99).
bomb_kinds=(genres movies description)
declare -A bomb_conns=([genres]=6 [movies]=5 [description]=5)
declare -A r=()
bomb_run() {
  local key=$1 nice=$2 from to t0 t1 k i f bpids=() rest
  sleep 0.5
  from=$(($(lines) + 1))
  t0=$(cpu_ticks)
  for k in "${bomb_kinds[@]}"; do
    run_wrk "$raw/hostile-bomb-$key-$k.txt" -t1 "-c${bomb_conns[$k]}" "-d$((secs + 2))s" \
      -H "Authorization: Bearer $attacker" -s "$bench/hostile_bomb.lua" "$service" -- "$k"
    bpids+=("$wrk_pid")
    if ((nice)); then renice -n "$nice" -p "$wrk_pid" >/dev/null; fi
  done
  sleep 1
  f=$raw/hostile-bystander-$key.txt
  run_wrk "$f" -t1 -c1 "-d$duration" "${by_auth[@]}" "$service/collection/"
  wait_wrk "$wrk_pid" "$f"
  read -r "r[$key.rps]" "r[$key.p50]" "r[$key.p99]" "r[$key.non2xx]" "r[$key.errs]" rest <<<"$(parse "$f")"
  i=0
  for k in "${bomb_kinds[@]}"; do
    wait_wrk "${bpids[i]}" "$raw/hostile-bomb-$key-$k.txt"
    i=$((i + 1))
  done
  t1=$(cpu_ticks)
  r[$key.cpu]=$((t1 - t0))
  sleep 2
  r[$key.after]=$(($(cpu_ticks) - t1))
  alive
  sleep 0.3 # let the log writer flush
  to=$(lines)
  r[$key.post]=$(route_stats "$server_log" "$from" "$to" "POST /collection/")
  r[$key.get]=$(route_stats "$server_log" "$from" "$to" "GET /collection/")

  local b_rps b_p50 b_p99 b_non2xx b_errs cells s v bytes answered
  for k in "${bomb_kinds[@]}"; do
    f=$raw/hostile-bomb-$key-$k.txt
    grep -q '^hostile: statuses' "$f" || { cat "$f" >&2; die "hostile_bomb.lua reported nothing ($k)"; }
    read -r b_rps b_p50 b_p99 b_non2xx b_errs rest <<<"$(parse "$f")"
    bytes=$(sed -n 's/^hostile: body_bytes //p' "$f")
    cells=""
    for s in 201 400 413 429 503 5xx other; do
      v=$(hostile_line "$f" "$s")
      if ((v)); then cells+="${cells:+, }$s: $v"; fi
    done
    answered=$(awk '/^hostile: statuses/ {n = 0; for (i = 3; i <= NF; i++) { split($i, kv, "="); n += kv[2] } print n}' "$f")
    r[$key.$k.answered]=$answered
    r[$key.$k.n400]=$(hostile_line "$f" 400)
    r[$key.$k.cells]=${cells:-none}
    r[$key.$k.p99]=$b_p99
    r[$key.$k.row]="| $(bomb_desc "$k") | $bytes | ${bomb_conns[$k]} | $answered | ${cells:-none} | $b_rps | $b_p50 | $b_p99 | $b_errs |"
  done
}

bomb_desc() {
  case $1 in
    genres) echo 'one movie, `genres` "g0,g1,…,g39999"' ;;
    movies) echo '1,001 movies' ;;
    description) echo 'description of 2,001 characters' ;;
  esac
}

# Each bomb alone first: one connection, nothing else running.
alone_rows=()
for k in "${bomb_kinds[@]}"; do
  f=$raw/hostile-bomb-alone-$k.txt
  run_wrk "$f" -t1 -c1 -d2s -H "Authorization: Bearer $attacker" -s "$bench/hostile_bomb.lua" "$service" -- "$k"
  wait_wrk "$wrk_pid" "$f"
  read -r b_rps b_p50 b_p99 _ b_errs _ <<<"$(parse "$f")"
  cells=""
  for s in 201 400 413 429 503 5xx other; do
    v=$(hostile_line "$f" "$s")
    if ((v)); then cells+="${cells:+, }$s: $v"; fi
  done
  alone_rows+=("| $(bomb_desc "$k") | $(sed -n 's/^hostile: body_bytes //p' "$f") | 1 | ${cells:-none} | $b_rps | $b_p50 | $b_p99 | $b_errs |")
  [[ $cells == "400: "* && $cells != *,* ]] || check FAIL "the $k bomb alone was not always 400: ${cells:-none}"
done
alive

bomb_run full 0
bomb_run nice 19
stop_part "part 1 (bombs)"

bombs_total=0
bombs_400=0
bomb_worst_p99=0
for key in full nice; do
  for k in "${bomb_kinds[@]}"; do
    bombs_total=$((bombs_total + ${r[$key.$k.answered]}))
    bombs_400=$((bombs_400 + ${r[$key.$k.n400]}))
    ((${r[$key.$k.answered]} == ${r[$key.$k.n400]})) || check FAIL "the $k bomb was not always 400: ${r[$key.$k.cells]}"
    bomb_worst_p99=$(awk -v a="$bomb_worst_p99" -v b="${r[$key.$k.p99]}" 'BEGIN {print (b > a ? b : a)}')
  done
  ((${r[$key.non2xx]} + ${r[$key.errs]} == 0)) ||
    check FAIL "the bystander got ${r[$key.non2xx]} non-2xx answers and ${r[$key.errs]} socket errors during the bombs ($key)"
  if awk -v a="${r[$key.after]}" -v i="$idle_cpu" -v hz="$hz" 'BEGIN {exit !(a <= i + 0.1 * hz)}'; then
    check OK "the server's CPU use stopped with the bombers ($( [[ $key == nice ]] && echo 'bombers at nice 19' || echo 'bombers at full priority')): $(secs_of "${r[$key.after]}") s over the 2 s after they stopped, $(secs_of "$idle_cpu") s over 2 s idle"
  else
    check FAIL "the server kept using CPU after the bombers stopped ($key): $(secs_of "${r[$key.after]}") s over the 2 s after, against $(secs_of "$idle_cpu") s idle"
  fi
done
if ((bombs_total > 0 && bombs_total == bombs_400)); then
  check OK "every one of the $bombs_total bombs answered 400 (client-side p99 per kind and run at most ${bomb_worst_p99} ms)"
fi
((a_non2xx + a_errs == 0)) || check FAIL "the bystander alone got $a_non2xx non-2xx answers and $a_errs socket errors"

# server_side KEY: the sentence of a run's server-side latencies.
server_side() {
  local pn pp50 pp99 pmax pcodes gn gp50 gp99 gmax gcodes
  read -r pn pp50 pp99 pmax pcodes <<<"${r[$1.post]}"
  read -r gn gp50 gp99 gmax gcodes <<<"${r[$1.get]}"
  echo "bombs (\`POST /collection/\`) $pn answers ($pcodes), p50 $pp50 ms, p99 $pp99 ms, max $pmax ms; the bystander's \`GET /collection/\` $gn answers ($gcodes), p50 $gp50 ms, p99 $gp99 ms, max $gmax ms"
}
cores() { awk -v t="$1" -v hz="$hz" -v s="$2" 'BEGIN {printf "%.2f", t / hz / s}'; }

part1=$(
  echo "## 1. Bystander latency during 16 concurrent bombs"
  echo
  echo "A bystander with 3 collections of 10 movies: \`wrk -t1 -c1 -d$duration --latency\` on \`GET /collection/\` with its token, alone, then while 16 connections of another user send bombs to \`POST /collection/\` as fast as they can (3 wrk processes, \`-t1\`, bench/hostile_bomb.lua), which start 1 s before the bystander and stop 1 s after it; twice: the bombers at full priority, then at \`nice 19\`. wrk runs on the same $(nproc) cores as the server, so at full priority much of the bystander's slowdown is the bombers' own CPU (3 busy wrk threads); at nice 19 the bombers get only the CPU the server and the bystander leave, closer to an attacker on other machines. Server: defaults, \`AUTH_RATE_PER_IP=0\`."
  echo
  echo "| bystander \`GET /collection/\` | alone | during bombs | ratio | during bombs (bombers at nice 19) | ratio |"
  echo "|---|---:|---:|---:|---:|---:|"
  echo "| p50 (ms) | $a_p50 | ${r[full.p50]} | $(ratio "${r[full.p50]}" "$a_p50") | ${r[nice.p50]} | $(ratio "${r[nice.p50]}" "$a_p50") |"
  echo "| p99 (ms) | $a_p99 | ${r[full.p99]} | $(ratio "${r[full.p99]}" "$a_p99") | ${r[nice.p99]} | $(ratio "${r[nice.p99]}" "$a_p99") |"
  echo "| requests/s | $a_rps | ${r[full.rps]} | $(ratio "${r[full.rps]}" "$a_rps") | ${r[nice.rps]} | $(ratio "${r[nice.rps]}" "$a_rps") |"
  echo "| non-2xx / socket errors | $a_non2xx / $a_errs | ${r[full.non2xx]} / ${r[full.errs]} | | ${r[nice.non2xx]} / ${r[nice.errs]} | |"
  echo "| server CPU s (cores) over the run: $duration alone, $((secs + 2)) s of bombs | $(secs_of "$alone_cpu") ($(cores "$alone_cpu" "$secs")) | $(secs_of "${r[full.cpu]}") ($(cores "${r[full.cpu]}" $((secs + 2)))) | | $(secs_of "${r[nice.cpu]}") ($(cores "${r[nice.cpu]}" $((secs + 2)))) | |"
  echo "| server CPU s over the 2 s after the bombers stop (idle: $(secs_of "$idle_cpu")) | | **$(secs_of "${r[full.after]}")** | | **$(secs_of "${r[nice.after]}")** | |"
  echo
  echo "Each bomb alone (\`wrk -t1 -c1 -d2s\`, nothing else running):"
  echo
  echo "| bomb | body bytes | connections | statuses | req/s | p50 (ms) | p99 (ms) | socket errors |"
  echo "|---|---:|---:|---|---:|---:|---:|---:|"
  printf '%s\n' "${alone_rows[@]}"
  echo
  echo "The bombs, bombers at full priority:"
  echo
  echo "| bomb (\`POST /collection/\`) | body bytes | connections | answers | statuses | req/s | p50 (ms) | p99 (ms) | socket errors |"
  echo "|---|---:|---:|---:|---|---:|---:|---:|---:|"
  for k in "${bomb_kinds[@]}"; do echo "${r[full.$k.row]}"; done
  echo
  echo "The bombs, bombers at nice 19:"
  echo
  echo "| bomb (\`POST /collection/\`) | body bytes | connections | answers | statuses | req/s | p50 (ms) | p99 (ms) | socket errors |"
  echo "|---|---:|---:|---:|---|---:|---:|---:|---:|"
  for k in "${bomb_kinds[@]}"; do echo "${r[nice.$k.row]}"; done
  echo
  echo "Server-side, from the request log, bombers at full priority: $(server_side full). Bombers at nice 19: $(server_side nice). The request log also counts requests wrk cut off at the end of a run, which the server answers 503 (client gone) and wrk never sees."
)

# --- 2. maximal lists -------------------------------------------------------

log "part 2: RSS under 8 concurrent lists of up to $target maximal collections"
start_part lists AUTH_RATE_PER_IP=0
lister=$(register "lister$tag")
lt=$(printf '%*s' 200 '' | tr ' ' '<')
ld=$(printf '%*s' 2000 '' | tr ' ' '<')
# Each collection's movies carry as many distinct genres as one may hold
# (100, of 2,000 bytes together: 20 bytes each), none in two collections:
# a list reads 100 counts per collection, and the user has 100,000.
awk -v n="$target" -v lt="$lt" -v ld="$ld" -v dir="$tmp" 'BEGIN {
  for (c = 1; c <= n; c++) {
    f = dir "/maximal-" c ".json"
    printf "{\"title\":\"%s\",\"description\":\"%s\",\"movies\":[", lt, ld > f
    for (m = 0; m * 9 < 100; m++) {
      g = ""
      for (i = m * 9; i < m * 9 + 9 && i < 100; i++) {
        name = sprintf("c%04dg%03d", c, i)
        while (length(name) < 20) name = name "x"
        g = g (g == "" ? "" : ",") name
      }
      printf "%s{\"uuid\":\"%08x-0000-4000-8000-%012x\",\"title\":\"Film\",\"genres\":\"%s\"}", (m ? "," : ""), c, m, g > f
    }
    printf "]}" > f
    close(f)
  }
}'
: >"$tmp/seed-codes"
seed_start=$(date +%s.%N)
seeded=0
while ((seeded < target)); do
  batch=$((target - seeded < 100 ? target - seeded : 100))
  seq "$((seeded + 1))" "$((seeded + batch))" | xargs -P8 -I{} curl -s -o /dev/null -w '%{http_code}\n' "${json[@]}" \
    -H "Authorization: Bearer $lister" --data-binary "@$tmp/maximal-{}.json" "$service/collection/" >>"$tmp/seed-codes"
  seeded=$(grep -c '^201$' "$tmp/seed-codes" || true)
  alive
  elapsed=$(awk -v a="$seed_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  if awk -v e="$elapsed" -v b="$seed_budget" 'BEGIN {exit !(e > b)}'; then
    log "seeding stopped after $elapsed s (HOSTILE_SEED_BUDGET=$seed_budget) at $seeded collections"
    break
  fi
done
elapsed=$(awk -v a="$seed_start" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
seed_other=$(grep -vc '^201$' "$tmp/seed-codes" || true)
if ((seed_other)); then
  check FAIL "seeding: $seed_other creates did not answer 201 ($(grep -v '^201$' "$tmp/seed-codes" | sort | uniq -c | awk '{printf "%s%s: %s", (NR > 1 ? ", " : ""), $2, $1}'))"
fi
((seeded >= 200)) || die "only $seeded collections seeded in $elapsed s (at least 200 needed)"
sleep 1
rss_before=$(status_kb VmRSS)
hwm_start=$(status_kb VmHWM)
hwm_note="VmHWM reset through /proc/PID/clear_refs just before the list"
echo 5 >"/proc/$server_pid/clear_refs" 2>/dev/null || hwm_note="VmHWM could not be reset: it is the peak since the server started"
lauth=(-H "Authorization: Bearer $lister")
read -r list_code list_bytes list_time <<<"$(curl -s -o "$tmp/list.json" -w '%{http_code} %{size_download} %{time_total}' "${lauth[@]}" "$service/collection/")"
[[ $list_code == 200 ]] || die "GET /collection/ answered $list_code: $(head -c 300 "$tmp/list.json")"
# grep -o | wc -l: pipefail would stop the run on no match.
listed=$( (grep -o '"uuid":' "$tmp/list.json" || true) | wc -l)
escaped=$( (grep -o '\\u003c' "$tmp/list.json" || true) | wc -l)
raw_lt=$( (grep -o '<' "$tmp/list.json" || true) | wc -l)
f_list=$raw/hostile-lists.txt
run_wrk "$f_list" -t2 -c8 "-d$duration" "${lauth[@]}" "$service/collection/"
rss_peak=0
while kill -0 "$wrk_pid" 2>/dev/null; do
  r=$(status_kb VmRSS 2>/dev/null || echo 0)
  ((r > rss_peak)) && rss_peak=$r
  sleep 0.2
done
wait_wrk "$wrk_pid" "$f_list"
alive
hwm_peak=$(status_kb VmHWM)
rss_after=$(status_kb VmRSS)
sleep 2
rss_after2=$(status_kb VmRSS)
read -r l_rps l_p50 l_p99 l_non2xx l_errs l_total <<<"$(parse "$f_list")"
stop_part "part 2 (lists)"
growth=$(((hwm_peak > rss_peak ? hwm_peak : rss_peak) - rss_before))
if ((growth < 200 * 1024)); then
  check OK "RSS grew by $(mib "$growth") MiB at most during 8 concurrent lists of $listed maximal collections"
else
  check FAIL "RSS grew by $(mib "$growth") MiB during 8 concurrent lists of $listed maximal collections"
fi
((l_non2xx + l_errs == 0)) || check FAIL "the lists had $l_non2xx non-2xx answers and $l_errs socket errors"

part2=$(
  echo "## 2. RSS under 8 concurrent maximal lists"
  echo
  echo "One user, $seeded collections (seeded through the API in $elapsed s, 8 curl at a time) of a 200-character title and a 2,000-character description, all \`<\`, and 12 movies that carry 100 distinct genres of 20 bytes, no genre in two collections. Then \`wrk -t2 -c8 -d$duration --latency\` on \`GET /collection/\`. Server: defaults, \`AUTH_RATE_PER_IP=0\`."
  echo
  echo "| list | value |"
  echo "|---|---:|"
  echo "| collections listed | $listed |"
  echo "| response size (bytes) | $list_bytes |"
  echo "| the first list, read from the database and summing every genre count (ms) | $(awk -v t="$list_time" 'BEGIN {printf "%.0f", t * 1000}') |"
  echo "| \`<\` written as \`\\u003c\` / as \`<\` | $escaped / $raw_lt |"
  echo "| requests/s | $l_rps |"
  echo "| p50 / p99 (ms) | $l_p50 / $l_p99 |"
  echo "| MB/s sent | $(awk -v r="$l_rps" -v b="$list_bytes" 'BEGIN {printf "%.0f", r * b / 1e6}') |"
  echo "| non-2xx / socket errors | $l_non2xx / $l_errs |"
  echo
  echo "| server memory (MiB) | value |"
  echo "|---|---:|"
  echo "| VmHWM after seeding (peak since start) | $(mib "$hwm_start") |"
  echo "| VmRSS before the lists | $(mib "$rss_before") |"
  echo "| peak during the lists: VmHWM | $(mib "$hwm_peak") |"
  echo "| peak during the lists: VmRSS sampled every 0.2 s | $(mib "$rss_peak") |"
  echo "| VmRSS right after / 2 s after | $(mib "$rss_after") / $(mib "$rss_after2") |"
  echo "| **growth (peak − before)** | **$(mib "$growth")** |"
  echo
  echo "$hwm_note."
)

# --- 3. registration flood ---------------------------------------------------

log "part 3: login latency during 120 concurrent registration loops"
start_part logins AUTH_RATE_PER_IP=0
register "loyal$tag" >/dev/null
login_body="{\"username\":\"loyal$tag\",\"password\":\"correct horse battery\"}"
# login_once FILE: one login; appends "status ms" to FILE.
login_once() {
  curl -s -o /dev/null -w '%{http_code} %{time_total}\n' "${json[@]}" -d "$login_body" "$service/login/" |
    awk '{printf "%s %.1f\n", $1, $2 * 1000}' >>"$1"
}
: >"$tmp/login-alone"
for _ in $(seq 20); do login_once "$tmp/login-alone"; done
alive
f_reg=$raw/hostile-register.txt
from=$(($(lines) + 1))
run_wrk "$f_reg" -t2 -c120 "-d$duration" -s "$bench/hostile_register.lua" "$service" -- "$tag"
reg_pid=$wrk_pid
sleep 0.5
: >"$tmp/login-during"
while kill -0 "$reg_pid" 2>/dev/null; do
  login_once "$tmp/login-during"
done
wait_wrk "$reg_pid" "$f_reg"
alive
sleep 0.3
to=$(lines)
grep -q '^hostile: statuses' "$f_reg" || { cat "$f_reg" >&2; die "hostile_register.lua reported nothing"; }
read -r r_rps r_p50 r_p99 r_non2xx r_errs r_total <<<"$(parse "$f_reg")"
read -r sv_reg_n sv_reg_p50 sv_reg_p99 sv_reg_max sv_reg_codes <<<"$(route_stats "$server_log" "$from" "$to" "POST /register/")"
read -r sv_log_n sv_log_p50 sv_log_p99 sv_log_max sv_log_codes <<<"$(route_stats "$server_log" "$from" "$to" "POST /login/")"
stop_part "part 3 (registrations)"

login_row() { # login_row LABEL FILE
  local n p50 p99 max codes
  read -r n p50 p99 max <<<"$(awk '{print $2}' "$2" >"$tmp/ms"; numbers "$tmp/ms")"
  codes=$(awk '{print $1}' "$2" | sort | uniq -c | awk '{printf "%s%s: %s", (NR > 1 ? ", " : ""), $2, $1}')
  echo "| $1 | $n | $codes | $p50 | $max |"
}
read -r _ _ _ login_max <<<"$(awk '{print $2}' "$tmp/login-during" >"$tmp/ms"; numbers "$tmp/ms")"
logins_during=$(wc -l <"$tmp/login-during")
logins_ok=$(grep -c '^200 ' "$tmp/login-during" || true)
logins_503=$(grep -c '^503 ' "$tmp/login-during" || true)
if awk -v m="$login_max" 'BEGIN {exit !(m < 2000)}'; then
  check OK "every login during the registration flood took under 2 s (max $login_max ms)"
else
  check FAIL "a login during the registration flood took $login_max ms (target < 2 s)"
fi
if ((logins_during > 0 && logins_503 * 20 <= logins_during && logins_ok + logins_503 == logins_during)); then
  check OK "$logins_ok of $logins_during logins during the flood answered 200, $logins_503 answered 503"
else
  check FAIL "logins during the flood: $logins_ok of $logins_during answered 200, $logins_503 answered 503, $((logins_during - logins_ok - logins_503)) something else"
fi
r201=$(hostile_line "$f_reg" 201)
r503=$(hostile_line "$f_reg" 503)
r503ra=$(hostile_line "$f_reg" 503ra)
r5xx=$(hostile_line "$f_reg" 5xx)
rother=$(($(hostile_line "$f_reg" 409) + $(hostile_line "$f_reg" 429) + r5xx + $(hostile_line "$f_reg" other)))
((r503 == r503ra)) || check FAIL "$((r503 - r503ra)) of the registrations' 503 answers had no Retry-After"
((rother == 0)) || check FAIL "registrations: $rother answers neither 201 nor 503 ($(grep '^hostile: statuses' "$f_reg"))"

part3=$(
  echo "## 3. Login latency during 120 concurrent registration loops"
  echo
  echo "A registered user logs in 20 times in a row alone, then in a row again (curl, a new connection each) while \`wrk -t2 -c120 -d$duration\` registers a new username on every request (bench/hostile_register.lua). Server: defaults (\`BCRYPT_COST\` 10) but **\`AUTH_RATE_PER_IP=0\`**: the per-address limit is off, since every client here is 127.0.0.1 and the limit would otherwise refuse nearly all of them with 429, hiding what hashing under a flood does."
  echo
  echo "| \`POST /login/\` of the user | logins | statuses | p50 (ms) | max (ms) |"
  echo "|---|---:|---|---:|---:|"
  login_row alone "$tmp/login-alone"
  login_row "during 120 registration loops" "$tmp/login-during"
  echo
  echo "| registrations (\`POST /register/\`, 120 connections) | value |"
  echo "|---|---:|"
  echo "| answers | $r_total |"
  echo "| 201 created | $r201 |"
  echo "| 503 shed (with Retry-After) | $r503 ($r503ra) |"
  echo "| anything else | $rother |"
  echo "| socket errors | $r_errs |"
  echo "| requests/s; created/s | $r_rps; $(awk -v n="$r201" -v s="$secs" 'BEGIN {printf "%.1f", n / s}') |"
  echo "| client p50 / p99 (ms) | $r_p50 / $r_p99 |"
  echo
  echo "Server-side, from the request log over the flood: \`POST /register/\` $sv_reg_n answers ($sv_reg_codes), p50 $sv_reg_p50 ms, p99 $sv_reg_p99 ms, max $sv_reg_max ms; \`POST /login/\` $sv_log_n answers ($sv_log_codes), p50 $sv_log_p50 ms, p99 $sv_log_p99 ms, max $sv_log_max ms."
)

# --- 4. the per-address limit -------------------------------------------------

# rate_run KEY BODY_PASSWORD: 70 requests in a row from 127.0.0.1 to a
# fresh server with the default AUTH_RATE_PER_IP: one POST /register/, then
# 69 POST /login/ of that username, each with BODY_PASSWORD. Sets, in the
# associative array q, KEY.codes, KEY.first429, KEY.n429, KEY.n429ra,
# KEY.ra (the Retry-After values), KEY.secs (how long the 70 took).
declare -A q=()
rate_run() {
  local key=$1 password=$2 i path code ra first="" t0 values=()
  start_part "rate-$key"
  : >"$tmp/rate-$key"
  t0=$(date +%s.%N)
  for i in $(seq 70); do
    if ((i == 1)); then path=register; else path=login; fi
    code=$(curl -s -o /dev/null -D "$tmp/headers" -w '%{http_code}' "${json[@]}" \
      -d "{\"username\":\"quick$tag\",\"password\":\"$password\"}" "$service/$path/")
    ra=$(awk 'tolower($1) == "retry-after:" {gsub(/\r/, ""); print $2}' "$tmp/headers")
    echo "$code ${ra:--}" >>"$tmp/rate-$key"
    if [[ $code == 429 ]]; then
      [[ -n $first ]] || first=$i
      values+=("${ra:--}")
    fi
  done
  q[$key.secs]=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN {printf "%.1f", b - a}')
  alive
  stop_part "part 4 (per-address limit, $key)"
  q[$key.codes]=$(awk '{print $1}' "$tmp/rate-$key" | sort | uniq -c | awk '{printf "%s%s: %s", (NR > 1 ? ", " : ""), $2, $1}')
  q[$key.first429]=${first:-none}
  q[$key.n429]=$(grep -c '^429 ' "$tmp/rate-$key" || true)
  q[$key.n429ra]=$(awk '$1 == 429 && $2 ~ /^[1-9][0-9]*$/' "$tmp/rate-$key" | wc -l)
  q[$key.ra]=$( ((${#values[@]})) && printf '%s\n' "${values[@]}" | sort -g | uniq | paste -sd, - | sed 's/,/, /g' || echo —)
}

log "part 4: 70 quick register/login requests from one address (AUTH_RATE_PER_IP=60)"
# Quick: a password of 3 bytes, refused with 400 before any hashing, so
# that the 70 arrive within a second or so.
rate_run quick abc
# Real: the right password, so that every request served hashes one.
rate_run real "correct horse battery"
# The bucket refills while they arrive: one more is served for each whole
# second the 70 take.
quick_allowed=$(awk -v s="${q[quick.secs]}" 'BEGIN {printf "%d", 60 + s}')
if [[ ${q[quick.first429]} != none ]] && ((${q[quick.first429]} > 60 && ${q[quick.first429]} <= quick_allowed + 1 &&
  ${q[quick.n429]} == ${q[quick.n429ra]})); then
  check OK "the per-address limit: 70 quick requests in ${q[quick.secs]} s, the first $((${q[quick.first429]} - 1)) served (60 + about 1 a second refilled), every 429 with Retry-After (${q[quick.ra]} s)"
else
  check FAIL "the per-address limit, 70 quick requests in ${q[quick.secs]} s: statuses ${q[quick.codes]}, first 429 at request ${q[quick.first429]}, ${q[quick.n429ra]} of ${q[quick.n429]} 429s with Retry-After ≥ 1"
fi
# The allowance is a bucket of 60 refilled at 1 a second: over the real
# run's seconds, about that many more are served.
real_allowed=$(awk -v s="${q[real.secs]}" 'BEGIN {printf "%d", 60 + s + 1}')
if [[ ${q[real.first429]} != none ]] && ((${q[real.first429]} <= real_allowed && ${q[real.n429]} == ${q[real.n429ra]})); then
  check OK "the per-address limit, 70 real register/login requests in ${q[real.secs]} s: first 429 at request ${q[real.first429]} (60 + about 1 a second refilled), every 429 with Retry-After"
else
  check FAIL "the per-address limit, 70 real register/login requests in ${q[real.secs]} s: statuses ${q[real.codes]}, first 429 at request ${q[real.first429]}, ${q[real.n429ra]} of ${q[real.n429]} 429s with Retry-After ≥ 1"
fi

part4=$(
  echo "## 4. The per-address limit (\`AUTH_RATE_PER_IP\` at its default, 60)"
  echo
  echo "70 requests in a row from 127.0.0.1 (curl, one at a time) to a fresh server with its defaults: one \`POST /register/\`, then 69 \`POST /login/\` of that username. Quick: a 3-byte password, refused with 400 before any hashing, so the 70 arrive within a second or two. Real: the right password, so every request served hashes (bcrypt cost 10) and the 70 take several seconds. The allowance is a token bucket of 60 refilled at 1 a second (\`golang.org/x/time/rate\`), so a run lasting T seconds gets about 60 + T through before the first 429."
  echo
  echo "| 70 attempts | seconds | statuses | first 429 at | 429s with Retry-After ≥ 1 s | Retry-After values (s) |"
  echo "|---|---:|---|---:|---:|---|"
  echo "| quick (400 before hashing) | ${q[quick.secs]} | ${q[quick.codes]} | ${q[quick.first429]} | ${q[quick.n429ra]} of ${q[quick.n429]} | ${q[quick.ra]} |"
  echo "| real (right password) | ${q[real.secs]} | ${q[real.codes]} | ${q[real.first429]} | ${q[real.n429ra]} of ${q[real.n429]} | ${q[real.ra]} |"
)

# --- report ---------------------------------------------------------------

commit=$(commit_name)
cpu=$(cpu_model)
passed_settings
cmd="bash bench/hostile.sh"
for v in HOSTILE_SEED_BUDGET HOSTILE_COLLECTIONS HOSTILE_DURATION; do
  if [[ -n ${!v:-} ]]; then cmd="$v=${!v} $cmd"; fi
done
{
  echo "# Hostile users"
  echo
  echo "Hostile-user run of $commit on $(date -u +%Y-%m-%dT%H:%MZ): $(nproc) CPUs${cpu:+ ($cpu)}, server, curl and wrk on the same machine: \`$cmd\` (\`HOSTILE_DURATION\` $duration)."
  echo "Each part runs its own server on a fresh SQLite file, with its defaults (bcrypt cost 10, info logs to a file)${passed[*]:+, with ${passed[*]}}, and only the setting named in the part changed."
  echo
  echo "Checks:"
  echo
  printf '%s\n' "${checks[@]}"
  echo
  echo "$part1"
  echo
  echo "$part2"
  echo
  echo "$part3"
  echo
  echo "$part4"
  echo
  echo "Servers:"
  echo
  printf -- '- %s\n' "${server_notes[@]}"
  if [[ -s $tmp/warnings ]]; then
    echo
    echo "First server log lines not at INFO level:"
    echo
    echo '```'
    cat "$tmp/warnings"
    echo '```'
  fi
} >"$out/hostile.md"

echo
cat "$out/hostile.md"
echo
echo "Report written to bench/out/hostile.md; wrk's output in bench/out/raw/hostile-*."
