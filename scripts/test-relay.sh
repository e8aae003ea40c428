#!/usr/bin/env bash
# Runs the relay's test suite on both backends: installs PostgreSQL if missing, starts a throwaway
# cluster, runs `cargo test -p amanat-server` with AMANAT_TEST_DATABASE_URL set, stops it at exit.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
bash scripts/install-relay-deps.sh
trap 'bash scripts/start-postgres.sh stop' EXIT
eval "$(bash scripts/start-postgres.sh)"
# The PostgreSQL variants are skipped without a database unless this says they are required.
export AMANAT_TEST_DATABASE_URL AMANAT_REQUIRE_POSTGRES=1
cargo test -p amanat-server "$@"
