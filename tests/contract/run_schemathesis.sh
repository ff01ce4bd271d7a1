#!/usr/bin/env bash
# The OpenAPI document at /schema is the contract (DESIGN.md, "HTTP API (v1)"): check a live
# server against it with schemathesis. .ci/run calls this once, after the test suite.
#
# It starts `attest serve` on loopback on a fresh database of the PostgreSQL at
# $SCHEMATHESIS_RUN_PG (default postgresql://postgres@127.0.0.1:5432), with a known admin
# key (every scope), runs the examples, coverage and fuzzing phases with the four checks
# below, bounded in examples and time, stops the server, drops the database, and exits
# non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/../.."

BIN=${BIN:-.venv/bin}
PG=${SCHEMATHESIS_RUN_PG:-postgresql://postgres@127.0.0.1:5432}
PORT=${SCHEMATHESIS_RUN_PORT:-18931}
MAX_EXAMPLES=${SCHEMATHESIS_RUN_MAX_EXAMPLES:-10}
MAX_TIME=${SCHEMATHESIS_RUN_MAX_TIME:-180}
DB="attest_schemathesis_$$"
WORK=$(mktemp -d)
rand() { head -c 64 /dev/urandom | od -An -tx1 | tr -d ' \n' | head -c "$1"; }
# Throwaway secrets and admin key for this run only (the API key format: attest_<16>_<52>).
ADMIN_KEY="attest_$(rand 16)_$(rand 52)"

SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    psql -q "$PG/postgres" -c "DROP DATABASE IF EXISTS $DB" >/dev/null 2>&1 || true
    rm -rf "$WORK"
}
trap cleanup EXIT

psql -q "$PG/postgres" -c "CREATE DATABASE $DB"
mkdir -p "$WORK/keys" "$WORK/data"
ATTEST_DATABASE_URL="$PG/$DB" \
ATTEST_HOST=127.0.0.1 \
ATTEST_PORT="$PORT" \
ATTEST_DATA_DIR="$WORK/data" \
ATTEST_KEYSTORE="$WORK/keys" \
ATTEST_BOOTSTRAP_ADMIN_KEY="$ADMIN_KEY" \
ATTEST_KEYSTORE_PASSPHRASE="$(rand 32)" \
ATTEST_PAIRWISE_SECRET="$(rand 32)" \
ATTEST_DOCUMENT_HASH_SECRET="$(rand 32)" \
ATTEST_LOG_LEVEL=WARNING \
    "$BIN/attest" serve >"$WORK/server.log" 2>&1 &
SERVER_PID=$!

BASE="http://127.0.0.1:$PORT"
for _ in $(seq 1 60); do
    if curl -fsS "$BASE/readyz" >/dev/null 2>&1; then break; fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "error: attest serve exited during start-up:" >&2
        cat "$WORK/server.log" >&2
        exit 1
    fi
    sleep 1
done
curl -fsS "$BASE/readyz" >/dev/null

status=0
# Known path parameter values (the seeded audience and policy), so fuzzing gets past 404s.
CONFIG=${SCHEMATHESIS_RUN_CONFIG:-tests/contract/schemathesis.toml}
"$BIN/schemathesis" --config-file "$CONFIG" run "$BASE/schema/openapi.json" \
    --url "$BASE" \
    -H "Authorization: Bearer $ADMIN_KEY" \
    --phases examples,coverage,fuzzing \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
    --max-examples "$MAX_EXAMPLES" \
    --max-time "$MAX_TIME" \
    --workers 1 \
    --seed "${SCHEMATHESIS_RUN_SEED:-1}" \
    --no-shrink \
    --request-timeout 10 \
    --generation-allow-x00 true \
    --generation-database none \
    --report-dir "$WORK/report" "$@" || status=$?

if [ "$status" -ne 0 ]; then
    echo "== schemathesis failed ($status); server log tail ==" >&2
    tail -n 80 "$WORK/server.log" >&2
fi
exit "$status"
