#!/usr/bin/env bash
# Runs every test of the project: Rust unit, integration and end-to-end tests (including the demo).
# Binding tests (Kotlin, Python) and server tests join here as those components land.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo test --workspace --locked
