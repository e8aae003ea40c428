#!/usr/bin/env bash
# Sourced by the test scripts that sync against a real relay (test-bindings.sh, test-android.sh):
# creates a throwaway `org init` organisation in $RELAY_DIR, starts `amanat serve` on 127.0.0.1
# (an ephemeral port, loopback only), stops it when the calling script exits, and exports what
# the tests need to enroll devices and sync:
#   AMANAT_BIN, AMANAT_RELAY_URL, AMANAT_ORG_DIR, AMANAT_PASSPHRASE_FILE
# Needs: AMANAT_BIN (the `amanat` binary), RELAY_DIR (a folder under build/), and a `fail`
# function in the caller. Envelopes over 6000 bytes are refused (`envelope_too_large`): the
# wedged-entry tests rely on it; everything else the tests send is far smaller.
[ -x "${AMANAT_BIN:-}" ] || fail "start-relay: AMANAT_BIN is not an executable"
[ -n "${RELAY_DIR:-}" ] || fail "start-relay: RELAY_DIR is not set"
rm -rf "$RELAY_DIR"
mkdir -p "$RELAY_DIR"
# A test organisation: the passphrase guards nothing real (throwaway keys, removed with build/).
printf 'relay-tests-passphrase\n' > "$RELAY_DIR/passphrase"
chmod 600 "$RELAY_DIR/passphrase"
"$AMANAT_BIN" org init "$RELAY_DIR/org" --passphrase-file "$RELAY_DIR/passphrase" \
    --scrypt-log-n 10 >/dev/null || fail "org init failed"
RELAY_LOG="$RELAY_DIR/relay.log"
"$AMANAT_BIN" serve --data "$RELAY_DIR/data" --org-public "$RELAY_DIR/org/org.pub" \
    --listen 127.0.0.1:0 --max-envelope-bytes 6000 --rate-limit 1000 --rate-burst 1000 \
    --log-level warn > "$RELAY_LOG" 2>&1 &
RELAY_PID=$!
stop_relay() { kill "$RELAY_PID" 2>/dev/null || true; wait "$RELAY_PID" 2>/dev/null || true; }
trap stop_relay EXIT
RELAY_ADDR=""
for _ in $(seq 1 100); do
    RELAY_ADDR=$(sed -n 's/^listening on \(127\.0\.0\.1:[0-9]*\)$/\1/p' "$RELAY_LOG" | head -n1)
    [ -n "$RELAY_ADDR" ] && break
    kill -0 "$RELAY_PID" 2>/dev/null || break
    sleep 0.1
done
[ -n "$RELAY_ADDR" ] || { cat "$RELAY_LOG" >&2; fail "the relay did not start"; }
export AMANAT_BIN AMANAT_RELAY_URL="http://$RELAY_ADDR" AMANAT_ORG_DIR="$RELAY_DIR/org" \
    AMANAT_PASSPHRASE_FILE="$RELAY_DIR/passphrase"
echo "relay on $AMANAT_RELAY_URL"
