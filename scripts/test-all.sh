#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian/Ubuntu machine with Rust: installs the test
# dependencies (age CLI, PostgreSQL, JNA + JUnit 5 + the Kotlin compiler from npm), starts a
# throwaway PostgreSQL on 127.0.0.1 for the relay's second backend, runs every Rust test (unit,
# integration, end-to-end, relay on SQLite and PostgreSQL, the demo), then the HQ review console in
# headless Chromium (scripts/test-console.sh installs Debian's chromium and chromium-driver), then
# the Kotlin and Python binding tests against the real library, then the Android shell's
# Robolectric tests (which fetch Robolectric and the Android framework jars from Maven Central
# once), then the iOS shell's checks (tree-sitter parse, bindings names, strings; no Swift compiler
# here), and stops PostgreSQL at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-test-deps.sh
bash scripts/install-relay-deps.sh
bash scripts/install-binding-deps.sh
trap 'bash scripts/start-postgres.sh stop' EXIT
eval "$(bash scripts/start-postgres.sh)"
# The PostgreSQL variants are skipped without a database unless this says they are required.
export AMANAT_TEST_DATABASE_URL AMANAT_REQUIRE_POSTGRES=1
cargo test --workspace --locked
bash scripts/test-console.sh
bash scripts/test-bindings.sh
bash scripts/test-android.sh
bash scripts/test-ios.sh
