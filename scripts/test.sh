#!/usr/bin/env bash
# Runs the whole suite on SQLite and, when a server is reachable, on PostgreSQL too.
# The two passes run side by side: the SQLite pass is mostly Python on one core, the PostgreSQL pass
# splits its time between Python and the server, so together they use the machine's cores instead of
# queueing. The SQLite pass prints as it goes; the PostgreSQL pass is logged and printed when done.
# PRAXIS_TEST_SERIAL=1 runs them one after the other.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PG_URL="${PRAXIS_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}"

pg_reachable() {
  "$BIN/python" - "$PG_URL" <<'PY' 2>/dev/null
import sys, psycopg
psycopg.connect(sys.argv[1], connect_timeout=3).close()
PY
}

run_sqlite() { env -u PRAXIS_TEST_DATABASE_URL "$BIN/pytest" -p no:cacheprovider "$@"; }
run_pg() { PRAXIS_TEST_DATABASE_URL="$PG_URL" "$BIN/pytest" -p no:cacheprovider "$@"; }

if ! pg_reachable; then
  echo "== tests on SQLite"
  run_sqlite "$@"
  status=$?
  echo "== PostgreSQL not reachable at $PG_URL: skipped the PostgreSQL run"
  exit $status
fi

if [ "${PRAXIS_TEST_SERIAL:-}" = 1 ]; then
  echo "== tests on SQLite"
  run_sqlite "$@"; sqlite_status=$?
  echo "== tests on PostgreSQL ($PG_URL)"
  run_pg "$@"; pg_status=$?
else
  pg_log="$(mktemp -t praxis-pg-tests.XXXXXX)"
  echo "== tests on PostgreSQL ($PG_URL) started in the background, output: $pg_log"
  run_pg "$@" >"$pg_log" 2>&1 &
  pg_pid=$!
  trap 'kill "$pg_pid" 2>/dev/null' INT TERM
  echo "== tests on SQLite"
  run_sqlite "$@"; sqlite_status=$?
  echo "== waiting for the PostgreSQL pass"
  wait "$pg_pid"; pg_status=$?
  echo "== tests on PostgreSQL ($PG_URL)"
  cat "$pg_log"
  rm -f "$pg_log"
fi

echo "== SQLite: $([ $sqlite_status = 0 ] && echo passed || echo "FAILED ($sqlite_status)")," \
     "PostgreSQL: $([ $pg_status = 0 ] && echo passed || echo "FAILED ($pg_status)")"
[ $sqlite_status = 0 ] && [ $pg_status = 0 ]
