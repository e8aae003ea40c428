#!/usr/bin/env bash
# The Android shell's tests on the JVM: the shell's Kotlin compiled against the real Android
# framework API (Robolectric's android-all, API 35), its resources compiled by aapt2, and the
# Robolectric tests driving the real activities against the real core (libamanat_ffi built for
# the host, loaded by JNA), enrolling and syncing through a real relay it starts on 127.0.0.1
# (scripts/start-relay.sh). Runs offline once scripts/install-android-deps.sh has fetched the jars
# (this script calls it).
#
# Last line of output: "N passed, M failed", read by CI.
# Honours CARGO_TARGET_DIR (default <repo>/target).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
OUT="$REPO/build/android"
DEPS="$REPO/build/android-deps"
APP="$REPO/android/app/src"
KOTLIN_HOME="$REPO/build/tools/node_modules/kotlin-compiler"
KOTLINC="$KOTLIN_HOME/bin/kotlinc"
FRAMEWORK_RES=/usr/share/android-framework-res/framework-res.apk
PACKAGE=org.amanat.android

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'test-android: %s\n' "$*" >&2; echo "0 passed, 1 failed"; exit 1; }

step "dependencies"
bash scripts/install-android-deps.sh
# Compiled against the plain framework jar; Robolectric runs the instrumented one (found by itself
# in $DEPS).
ANDROID_ALL="$(ls "$DEPS"/android-all-1*.jar 2>/dev/null | head -n1)"
[ -n "$ANDROID_ALL" ] || fail "no android-all jar in $DEPS"
ls "$DEPS"/android-all-instrumented-*.jar >/dev/null 2>&1 || fail "no android-all-instrumented jar in $DEPS"

step "build libamanat_ffi, uniffi-bindgen and the relay; generate the Kotlin bindings"
# AMANAT_PREBUILT=<dir> with AMANAT_BIN=<amanat binary>: use libamanat_ffi.so and uniffi-bindgen
# from <dir> instead of building (for iterating on the shell alone; CI builds).
if [ -n "${AMANAT_PREBUILT:-}" ]; then
    LIB_DIR="$AMANAT_PREBUILT"
    BINDGEN="$AMANAT_PREBUILT/uniffi-bindgen"
    [ -x "${AMANAT_BIN:-}" ] || fail "AMANAT_PREBUILT needs AMANAT_BIN (the amanat binary)"
else
    # As in test-bindings.sh: the FFI library and bindgen in one invocation, the relay in its own
    # (so the library keeps its feature set; cargo reuses test-bindings.sh's builds).
    cargo build --locked -p amanat-ffi --lib --bins
    cargo build --locked -p amanat-server --bin amanat
    LIB_DIR="$TARGET/debug"
    BINDGEN="$TARGET/debug/uniffi-bindgen"
    AMANAT_BIN="$TARGET/debug/amanat"
fi
LIB="$LIB_DIR/libamanat_ffi.so"
[ -f "$LIB" ] || fail "no $LIB"
[ -x "$AMANAT_BIN" ] || fail "no $AMANAT_BIN"
rm -rf "$OUT"
mkdir -p "$OUT"
"$BINDGEN" generate --library "$LIB" --language kotlin --no-format --out-dir "$OUT/bindings" >/dev/null
BINDINGS="$OUT/bindings/org/amanat/core/amanat_ffi.kt"
[ -s "$BINDINGS" ] || fail "no generated Kotlin bindings"

step "resources: aapt2 compile + link (what the Android Gradle Plugin does)"
# The merged manifest gets the package (Gradle's `namespace`). Debian's aapt2 links against the
# API 29 framework resources, which lack android:dataExtractionRules (API 31): that one attribute
# is left out of the copy aapt2 links; Robolectric reads the full manifest (android_merged_manifest).
mkdir -p "$OUT/merged" "$OUT/assets" "$OUT/gen" "$OUT/classes" "$OUT/test-config/com/android/tools"
sed "s|<manifest xmlns:android=\"http://schemas.android.com/apk/res/android\">|<manifest xmlns:android=\"http://schemas.android.com/apk/res/android\" package=\"$PACKAGE\">|" \
    "$APP/main/AndroidManifest.xml" > "$OUT/merged/AndroidManifest.xml"
grep -q "package=\"$PACKAGE\"" "$OUT/merged/AndroidManifest.xml" || fail "could not set the manifest package"
grep -v 'android:dataExtractionRules=' "$OUT/merged/AndroidManifest.xml" > "$OUT/link-manifest.xml"
aapt2 compile --dir "$APP/main/res" -o "$OUT/res.zip"
aapt2 link -I "$FRAMEWORK_RES" --manifest "$OUT/link-manifest.xml" --min-sdk-version 26 \
    --target-sdk-version 29 -o "$OUT/resources.apk" --java "$OUT/gen" "$OUT/res.zip"
javac -nowarn --release 17 -d "$OUT/classes" "$OUT/gen/org/amanat/android/R.java"
cat > "$OUT/test-config/com/android/tools/test_config.properties" <<PROPS
android_merged_manifest=$OUT/merged/AndroidManifest.xml
android_merged_resources=$APP/main/res
android_merged_assets=$OUT/assets
android_resource_apk=$OUT/resources.apk
android_custom_package=$PACKAGE
PROPS

step "compile the shell + its tests against android-all (Kotlin, JVM 17)"
# Kotlin's own stdlib first: android-all carries an older copy of it.
CP="$OUT/classes:$KOTLIN_HOME/lib/kotlin-stdlib.jar"
for jar in "$DEPS"/*.jar; do
    case "$jar" in *android-all*) ;; *) CP="$CP:$jar" ;; esac
done
mapfile -t MAIN_KT < <(find "$APP/main/kotlin" -name '*.kt' | sort)
mapfile -t TEST_KT < <(find "$APP/test/kotlin" -name '*.kt' | sort)
"$KOTLINC" -jvm-target 17 -nowarn -cp "$CP:$ANDROID_ALL" -d "$OUT/classes" "$BINDINGS" "${MAIN_KT[@]}" "${TEST_KT[@]}" \
    || fail "Kotlin compilation failed"

step "start a relay on 127.0.0.1 for the enrollment and sync tests (org init organisation)"
# Shared with test-bindings.sh: the tests enroll with codes from `amanat device enroll` (run as a
# process, as HQ would) and sync through this relay. Loopback only; stopped at exit.
RELAY_DIR="$OUT/relay"
# shellcheck source=scripts/start-relay.sh
source scripts/start-relay.sh

step "Robolectric tests (offline, real core)"
LOG="$OUT/tests.log"
set +e
# --add-opens: Robolectric's file-descriptor interceptor reaches into java.io (as in Gradle setups).
java -Xmx2g -XX:TieredStopAtLevel=1 --add-opens=java.base/java.io=ALL-UNNAMED \
    -Drobolectric.offline=true -Drobolectric.dependency.dir="$DEPS" \
    -Drobolectric.logging.enabled=false ${ANDROID_TESTS:+-Damanat.tests=$ANDROID_TESTS} \
    -Djna.library.path="$LIB_DIR" -Damanat.manifest="$APP/main/AndroidManifest.xml" \
    -cp "$OUT/test-config:$CP:$ANDROID_ALL" \
    org.amanat.android.RunTests 2>&1 | tee "$LOG"
status=${PIPESTATUS[0]}
set -e
tail -n1 "$LOG" | grep -Eq '^[0-9]+ passed, [0-9]+ failed$' || { echo "0 passed, 1 failed"; exit 1; }
exit "$status"
