# Sourced by .ci/run: makes sure a PostgreSQL server runs on 127.0.0.1:5432,
# installing it from Debian's packages when there is none, and exports
# TEST_DATABASE_URL for a fresh test database. Also usable by hand:
#   source .ci/postgres.sh && go test -race ./...
export PGOPTIONS="-c client_min_messages=warning"  # no NOTICE chatter
pg_url="postgres://postgres:postgres@127.0.0.1:5432/movies_test?sslmode=disable"
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then
    echo "installing PostgreSQL"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
  fi
  if [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
    pg_createcluster "$(ls /usr/lib/postgresql | sort -V | tail -1)" main
  fi
  read -r ver cluster _ < <(pg_lsclusters -h | head -1)
  pg_ctlcluster "$ver" "$cluster" start || true
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 1
  done
fi
su postgres -c "psql -qc \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
su postgres -c "dropdb --if-exists movies_test && createdb movies_test"
export TEST_DATABASE_URL="$pg_url"
