#!/usr/bin/env bash
# Starts a throw-away PostgreSQL server for the store tests (the session fixture pg_base_url in
# tests/store_fixtures.py runs it) and prints the lines to eval:
#   export WATTBENCH_TEST_PG_URL=postgresql+psycopg://...
#   export WATTBENCH_TEST_PG_STOP='...pg_ctl ... stop'   (the command that stops it)
# Uses Debian's postgresql (installed by .ci/setup.sh): initdb + pg_ctl as the postgres user
# (or the current user when not root) into a temporary folder, listening on a Unix socket and
# 127.0.0.1 on a free port. Prints nothing to stdout and exits 1 when no server can start; the
# postgres-marked tests are then skipped with their reason.
set -euo pipefail

bindir=""
for d in /usr/lib/postgresql/*/bin; do
  [ -x "$d/initdb" ] && bindir="$d"
done
if [ -z "$bindir" ]; then
  echo "postgres.sh: no PostgreSQL server found (apt-get install postgresql)" >&2
  exit 1
fi

run_as=()
owner="$(id -un)"
if [ "$(id -u)" -eq 0 ]; then
  if ! id postgres >/dev/null 2>&1; then
    echo "postgres.sh: running as root but there is no 'postgres' user" >&2
    exit 1
  fi
  owner=postgres
  if command -v runuser >/dev/null 2>&1; then run_as=(runuser -u postgres --); else run_as=(su postgres -s /bin/sh -c); fi
fi

root="$(mktemp -d /tmp/wattbench-pg.XXXXXX)"
chown "$owner" "$root"
chmod 700 "$root"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
pw="wattbench"

"${run_as[@]}" "$bindir/initdb" -D "$root/data" -U wattbench --auth=trust -E UTF8 >"$root/initdb.log" 2>&1 || {
  echo "postgres.sh: initdb failed, see $root/initdb.log" >&2; exit 1; }
"${run_as[@]}" "$bindir/pg_ctl" -D "$root/data" -l "$root/server.log" -w -t 60 \
  -o "-p $port -k $root -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null 2>&1 || {
  echo "postgres.sh: the server did not start, see $root/server.log" >&2; exit 1; }
"${run_as[@]}" "$bindir/createdb" -h 127.0.0.1 -p "$port" -U wattbench wattbench_test >/dev/null 2>&1 || {
  echo "postgres.sh: createdb failed" >&2; exit 1; }

echo "postgres.sh: server in $root on port $port (stop: $bindir/pg_ctl -D $root/data stop)" >&2
echo "export WATTBENCH_TEST_PG_URL=postgresql+psycopg://wattbench:$pw@127.0.0.1:$port/wattbench_test"
echo "export WATTBENCH_TEST_PG_STOP='${run_as[*]} $bindir/pg_ctl -D $root/data -m fast stop; rm -rf $root'"
