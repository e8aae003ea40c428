#!/usr/bin/env bash
# Installs what the Android shell's JVM tests (scripts/test-android.sh) need on a fresh Debian
# machine, as root. Idempotent: work already done is skipped.
#  - the binding tests' tools (Java, the Kotlin compiler from npm): scripts/install-binding-deps.sh
#  - Debian's aapt2 and Android framework resources (API 29): compile the shell's res/ into a
#    resource APK and R class, as the Android Gradle Plugin would (Google's Maven is not reachable)
#  - Maven, then Robolectric 4.16.1, the android-all-instrumented API 35 framework jar, JUnit 4 and
#    JNA from Maven Central, once, into build/android-deps (android/ci/pom.xml), so the tests run
#    offline afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
DEPS="$REPO/build/android-deps"
POM="$REPO/android/ci/pom.xml"

log() { printf 'install-android-deps: %s\n' "$*"; }

bash scripts/install-binding-deps.sh

need_apt=()
for pkg in aapt android-framework-res; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        need_apt+=("$pkg")
    fi
done
command -v mvn >/dev/null 2>&1 || need_apt+=(maven)
if [ "${#need_apt[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        log "need root to install: ${need_apt[*]}" >&2
        exit 1
    fi
    apt-get update -qq
    log "apt-get install ${need_apt[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
else
    log "aapt2, android-framework-res and maven already installed"
fi

# The jars, once: the stamp holds the pom's hash, so a changed pom fetches again.
stamp="$DEPS/.pom.sha256"
want="$(sha256sum "$POM" | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    log "Maven Central jars already in $DEPS"
else
    log "fetching Robolectric + android-all-instrumented + JUnit 4 + JNA into $DEPS (~530 MB, once)"
    rm -rf "$DEPS"
    mkdir -p "$DEPS"
    mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DoutputDirectory="$DEPS"
    # Robolectric itself needs androidx.test's monitor (InstrumentationRegistry), published as an
    # .aar: its classes.jar goes on the test classpath. (Test runner only; the app uses no androidx.)
    for aar in "$DEPS"/*.aar; do
        [ -e "$aar" ] || continue
        unzip -p "$aar" classes.jar > "${aar%.aar}.jar"
    done
    echo "$want" > "$stamp"
fi
log "done"
