#!/usr/bin/env bash
# Runs the relay's test suite on both backends: installs PostgreSQL if missing, starts a throwaway
# cluster, runs `cargo test -p amanat-server` with AMANAT_TEST_DATABASE_URL set, stops it at exit.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
bash scripts/install-relay-deps.sh
trap 'bash scripts/start-postgres.sh stop' EXIT
eval "$(bash scripts/start-postgres.sh)"
export AMANAT_TEST_DATABASE_URL
unset AMANAT_SKIP_POSTGRES
cargo test -p amanat-server "$@"
