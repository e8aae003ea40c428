#!/usr/bin/env bash
# Installs what the binding tests (scripts/test-bindings.sh) need on a fresh Debian machine, as root:
# JNA and JUnit 5 from Debian, and the Kotlin compiler (npm package `kotlin-compiler`, the full
# distribution) into <repo>/build/tools. Idempotent: work already done is skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
TOOLS="$REPO/build/tools"
KOTLIN_VERSION="2.4.20"

log() { printf 'install-binding-deps: %s\n' "$*"; }

apt_updated=0
apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        log "need root to install: $*" >&2
        exit 1
    fi
    if [ "$apt_updated" -eq 0 ]; then
        apt-get update -qq
        apt_updated=1
    fi
    log "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- Debian packages (JNA for the Kotlin bindings, JUnit 5 console launcher) ---
need_apt=()
for pkg in libjna-java junit5; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        need_apt+=("$pkg")
    fi
done
if [ "${#need_apt[@]}" -gt 0 ]; then
    apt_install "${need_apt[@]}"
else
    log "libjna-java and junit5 already installed"
fi

# --- Java runtime (the Kotlin compiler and the tests run on it) ---
if ! command -v java >/dev/null 2>&1; then
    apt_install default-jdk-headless
fi

# --- Kotlin compiler ---
KOTLINC="$TOOLS/node_modules/kotlin-compiler/bin/kotlinc"
installed_version=""
if [ -f "$TOOLS/node_modules/kotlin-compiler/package.json" ]; then
    installed_version="$(sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$TOOLS/node_modules/kotlin-compiler/package.json" | head -n1)"
fi
if [ -x "$KOTLINC" ] && [ "$installed_version" = "$KOTLIN_VERSION" ]; then
    log "kotlin-compiler $KOTLIN_VERSION already installed"
else
    if ! command -v npm >/dev/null 2>&1; then
        apt_install npm
    fi
    log "npm install kotlin-compiler@$KOTLIN_VERSION into $TOOLS"
    mkdir -p "$TOOLS"
    npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error "kotlin-compiler@$KOTLIN_VERSION" >/dev/null
    chmod +x "$TOOLS/node_modules/kotlin-compiler/bin/"* 2>/dev/null || true
fi
log "done"
