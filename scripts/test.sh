#!/usr/bin/env bash
# Runs the whole suite on SQLite, then again on PostgreSQL when a server is reachable.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
PG_URL="${PRAXIS_TEST_PG_URL:-postgresql://postgres@127.0.0.1:5432/test}"

echo "== tests on SQLite"
env -u PRAXIS_TEST_DATABASE_URL "$BIN/pytest" "$@"

if "$BIN/python" - "$PG_URL" <<'PY' 2>/dev/null
import sys, psycopg
psycopg.connect(sys.argv[1], connect_timeout=3).close()
PY
then
  echo "== tests on PostgreSQL ($PG_URL)"
  PRAXIS_TEST_DATABASE_URL="$PG_URL" "$BIN/pytest" "$@"
else
  echo "== PostgreSQL not reachable at $PG_URL: skipped the PostgreSQL run"
fi
