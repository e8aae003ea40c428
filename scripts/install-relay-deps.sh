#!/usr/bin/env bash
# Installs what the relay's PostgreSQL test run needs (Debian's postgresql). Idempotent.
set -euo pipefail
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }
if [ -n "$(pg_bin)" ] && [ -x "$(pg_bin)/initdb" ]; then
    exit 0
fi
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
$SUDO apt-get update
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends postgresql
