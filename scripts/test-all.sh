#!/usr/bin/env bash
# Runs every test of the project on a fresh Debian/Ubuntu machine with Rust: installs the test
# dependencies it needs, then runs the Rust unit, integration and end-to-end tests (including the
# demo). Binding tests (Kotlin, Python) and relay tests against PostgreSQL join here as those
# components land.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-test-deps.sh
cargo test --workspace --locked
