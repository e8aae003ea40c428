#!/usr/bin/env bash
# Starts a throwaway PostgreSQL cluster (under /tmp, one per checkout) on 127.0.0.1 (trust auth, loopback
# only) and prints `export AMANAT_TEST_DATABASE_URL=...`. Stop it with: scripts/start-postgres.sh stop
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
# Outside the checkout: as root the cluster runs as `postgres`, which may not be able to enter the
# checkout's parent folders (e.g. under /root). One cluster per checkout path.
PGROOT="${AMANAT_PG_DIR:-${TMPDIR:-/tmp}/amanat-pg-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)}"
DATA="$PGROOT/data"
PORT="${AMANAT_PG_PORT:-55432}"
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$BIN/initdb" ] || { echo "PostgreSQL not installed: run scripts/install-relay-deps.sh" >&2; exit 1; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if [ "${1:-}" = "stop" ]; then
    [ -f "$DATA/postmaster.pid" ] && as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null || true
    exit 0
fi
mkdir -p "$PGROOT"
if [ "$(id -u)" -eq 0 ]; then chown postgres:postgres "$PGROOT"; fi
if [ ! -f "$DATA/PG_VERSION" ]; then
    as_pg "$BIN/initdb" -D "$DATA" -U postgres -A trust --no-sync >"$PGROOT/initdb.log" 2>&1
fi
if ! as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; then
    # Find a free port starting at $PORT (bounded).
    for _ in $(seq 1 50); do
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
        PORT=$((PORT + 1))
    done
    as_pg "$BIN/pg_ctl" -D "$DATA" -w -t 60 -l "$PGROOT/server.log" \
        -o "-c listen_addresses=127.0.0.1 -p $PORT -k $PGROOT -c max_connections=400 -c fsync=on" start >/dev/null
    echo "$PORT" >"$PGROOT/port"
fi
PORT="$(cat "$PGROOT/port")"
as_pg "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='amanat'" | grep -q 1 \
    || as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres amanat
echo "export AMANAT_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:$PORT/amanat"
