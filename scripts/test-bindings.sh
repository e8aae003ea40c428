#!/usr/bin/env bash
# Builds the FFI library and the bindings generator, generates the Kotlin, Swift and Python
# bindings into build/bindings/, starts a sync relay (`amanat serve`, 127.0.0.1, an `org init`
# organisation) for the sync tests, then compiles and runs the Kotlin (JUnit 5, JVM) and Python
# (unittest) tests. Swift bindings are generated and checked to exist (no Swift compiler here).
#
# Last line of output: "N passed, M failed" (Kotlin + Python tests), read by CI.
# Honours CARGO_TARGET_DIR (default <repo>/target). Needs scripts/install-binding-deps.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
OUT="$REPO/build/bindings"
TOOLS="$REPO/build/tools"
KOTLIN_HOME="$TOOLS/node_modules/kotlin-compiler"
KOTLINC="$KOTLIN_HOME/bin/kotlinc"
JAVA_LIBS=/usr/share/java
PYTHON="${PYTHON:-python3}"

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'test-bindings: %s\n' "$*" >&2; echo "0 passed, 1 failed"; exit 1; }

for f in "$KOTLINC" "$JAVA_LIBS/jna.jar" "$JAVA_LIBS/junit-platform-console-standalone.jar" \
         "$JAVA_LIBS/junit-jupiter-api.jar"; do
    [ -e "$f" ] || fail "missing $f: run scripts/install-binding-deps.sh"
done

step "build libamanat_ffi and uniffi-bindgen (one cargo invocation, target $TARGET)"
# One build for both: a separate `cargo run --bin uniffi-bindgen` would pick another feature set
# and rebuild (TOOLCHAIN.md).
cargo build --locked -p amanat-ffi --lib --bins
LIB="$TARGET/debug/libamanat_ffi.so"
BINDGEN="$TARGET/debug/uniffi-bindgen"
[ -f "$LIB" ] || fail "no $LIB"
# The relay and HQ tool for the sync tests, in its own invocation so the FFI library keeps the
# feature set it was built with above.
cargo build --locked -p amanat-server --bin amanat
AMANAT_BIN="$TARGET/debug/amanat"
[ -x "$AMANAT_BIN" ] || fail "no $AMANAT_BIN"

step "generate bindings into $OUT"
rm -rf "$OUT"
for lang in kotlin swift python; do
    "$BINDGEN" generate --library "$LIB" --language "$lang" --no-format --out-dir "$OUT/$lang" >/dev/null
done
for f in "$OUT/swift/AmanatCore.swift" "$OUT/swift/AmanatCoreFFI.h" "$OUT/swift/AmanatCoreFFI.modulemap" \
         "$OUT/kotlin/org/amanat/core/amanat_ffi.kt" "$OUT/python/amanat_ffi.py"; do
    [ -s "$f" ] || fail "bindings file missing or empty: $f"
done
echo "Swift: AmanatCore.swift, AmanatCoreFFI.h, AmanatCoreFFI.modulemap generated (not compiled here)"

step "start a relay on 127.0.0.1 for the sync tests (org init organisation)"
# The Kotlin and Python sync tests enroll their vaults with codes from `amanat device enroll`
# (they run the binary themselves) and sync through this relay. Loopback only; stopped at exit.
RELAY_DIR="$OUT/relay"
# shellcheck source=scripts/start-relay.sh
source scripts/start-relay.sh

kotlin_passed=0; kotlin_failed=0; python_passed=0; python_failed=0; status=0

step "Kotlin: compile generated bindings + tests (JVM 17)"
CLASSES="$REPO/build/bindings/kotlin-classes"
mkdir -p "$CLASSES"
KT_CP="$JAVA_LIBS/jna.jar:$KOTLIN_HOME/lib/kotlin-test.jar:$KOTLIN_HOME/lib/kotlin-test-junit5.jar:$JAVA_LIBS/junit-jupiter-api.jar:$JAVA_LIBS/apiguardian-api.jar:$JAVA_LIBS/opentest4j.jar"
mapfile -t KT_TESTS < <(find "$REPO/bindings/tests/kotlin" -name '*.kt' | sort)
# The benchmark's main is compiled too, so it cannot rot (run it as described in FfiBench.kt).
if ! "$KOTLINC" -jvm-target 17 -nowarn -cp "$KT_CP" -d "$CLASSES" \
        "$OUT/kotlin/org/amanat/core/amanat_ffi.kt" "${KT_TESTS[@]}" \
        "$REPO/bindings/benches/kotlin/FfiBench.kt"; then
    fail "Kotlin compilation failed"
fi

step "Kotlin: run JUnit 5 tests"
KT_LOG="$REPO/build/bindings/junit.log"
set +e
java -Djna.library.path="$TARGET/debug" -jar "$JAVA_LIBS/junit-platform-console-standalone.jar" \
    --disable-banner --disable-ansi-colors --details=tree --fail-if-no-tests \
    -cp "$CLASSES:$KOTLIN_HOME/lib/kotlin-stdlib.jar:$KOTLIN_HOME/lib/kotlin-test.jar:$KOTLIN_HOME/lib/kotlin-test-junit5.jar:$JAVA_LIBS/jna.jar" \
    --select-package org.amanat.tests 2>&1 | tee "$KT_LOG"
kt_status=${PIPESTATUS[0]}
set -e
# The console launcher's summary: "[        12 tests successful      ]" / "[         0 tests failed          ]".
kotlin_passed=$(sed -n 's/^\[ *\([0-9]*\) tests successful *\]$/\1/p' "$KT_LOG" | tail -n1)
kotlin_failed=$(sed -n 's/^\[ *\([0-9]*\) tests failed *\]$/\1/p' "$KT_LOG" | tail -n1)
kotlin_passed=${kotlin_passed:-0}
kotlin_failed=${kotlin_failed:-0}
if [ "$kt_status" -ne 0 ]; then
    status=1
    [ "$kotlin_failed" -gt 0 ] || kotlin_failed=1
fi

step "Python: unittest"
PY_DIR="$OUT/python"
cp "$LIB" "$PY_DIR/"
PY_LOG="$REPO/build/bindings/unittest.log"
set +e
PYTHONPATH="$PY_DIR" "$PYTHON" -m unittest discover -v -s "$REPO/bindings/tests/python" -p 'test_*.py' 2>&1 | tee "$PY_LOG"
py_status=${PIPESTATUS[0]}
set -e
# unittest prints "Ran N tests" and then "OK" or "FAILED (failures=F, errors=E)".
py_ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in .*/\1/p' "$PY_LOG" | tail -n1)
py_ran=${py_ran:-0}
py_bad=0
if line=$(grep -E '^FAILED \(' "$PY_LOG" | tail -n1); then
    for n in $(printf '%s\n' "$line" | grep -oE '(failures|errors|unexpected successes)=[0-9]+' | grep -oE '[0-9]+$'); do
        py_bad=$((py_bad + n))
    done
fi
python_failed=$py_bad
python_passed=$((py_ran - py_bad))
if [ "$py_status" -ne 0 ]; then
    status=1
    [ "$python_failed" -gt 0 ] || python_failed=1
fi

step "summary"
echo "Kotlin: $kotlin_passed passed, $kotlin_failed failed; Python: $python_passed passed, $python_failed failed"
echo "$((kotlin_passed + python_passed)) passed, $((kotlin_failed + python_failed)) failed"
exit "$status"
