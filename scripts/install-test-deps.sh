#!/usr/bin/env bash
# Installs what the test suite needs beyond the Rust toolchain, on Debian/Ubuntu. Idempotent: does
# nothing when everything is present. Needs root or sudo only when something is missing.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

missing=()
# The reference `age` CLI: attachment tests check that it decrypts what the core writes.
command -v age >/dev/null 2>&1 || missing+=(age)

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
