#!/usr/bin/env bash
# Checks of the iOS shell (ios/) that need no Swift compiler (none is reachable from the project's
# machines; ios/README.md says what is and is not verified):
#   1. generates the Swift bindings (AmanatCore.swift) from the FFI library, as CI builds it;
#   2. parse: every .swift file under ios/ parses with tree-sitter's Swift grammar, no ERROR or
#      MISSING node (failures as file:line:col);
#   3. names: every name the shell uses on the bindings (types, functions, methods with their
#      argument labels, enum cases and their arity, record fields, protocol requirements) exists in
#      the freshly generated AmanatCore.swift — a rename in the FFI fails here;
#   4. strings: every Localizable.strings key in en, ru and uz, same placeholders, Uzbek in Latin
#      script, every key the shell looks up present;
#   5. build-xcframework.sh is valid bash (and refuses to run off macOS);
#   6. the checker's own unit tests (renamed FFI names, unbalanced braces, broken translations
#      must make it fail).
# Installs tree-sitter and tree-sitter-swift from PyPI into build/tools/ios-venv once.
#
# Last line of output: "N passed, M failed", read by CI.
# Honours CARGO_TARGET_DIR (default <repo>/target): builds libamanat_ffi and uniffi-bindgen there
# with cargo (a no-op when scripts/test-bindings.sh built them already). AMANAT_FFI_LIB and
# AMANAT_UNIFFI_BINDGEN, when both set, name a prebuilt library and generator instead.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
OUT="$REPO/build/ios"
VENV="$REPO/build/tools/ios-venv"
PYTHON="${PYTHON:-python3}"
TREE_SITTER_VERSION=0.25.2
TREE_SITTER_SWIFT_VERSION=0.7.4

step() { printf '\n== %s\n' "$*"; }
fail() { printf 'test-ios: %s\n' "$*" >&2; echo "0 passed, 1 failed"; exit 1; }

step "tree-sitter $TREE_SITTER_VERSION + tree-sitter-swift $TREE_SITTER_SWIFT_VERSION (PyPI, $VENV)"
PACKAGES=("tree-sitter==$TREE_SITTER_VERSION" "tree-sitter-swift==$TREE_SITTER_SWIFT_VERSION")
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import tree_sitter, tree_sitter_swift" 2>/dev/null; then
    PY="$VENV/bin/python"
elif [ -d "$VENV/site" ] && PYTHONPATH="$VENV/site" "$PYTHON" -c "import tree_sitter, tree_sitter_swift" 2>/dev/null; then
    export PYTHONPATH="$VENV/site"
    PY="$PYTHON"
else
    rm -rf "$VENV"
    if "$PYTHON" -m venv "$VENV" 2>/dev/null; then
        "$VENV/bin/pip" install --quiet --disable-pip-version-check "${PACKAGES[@]}" || fail "pip install failed"
        PY="$VENV/bin/python"
    else
        # No venv module (Debian's python3 without python3-venv): install into a folder instead.
        rm -rf "$VENV"
        "$PYTHON" -m pip install --quiet --disable-pip-version-check --target "$VENV/site" "${PACKAGES[@]}" \
            || fail "pip install --target failed"
        export PYTHONPATH="$VENV/site"
        PY="$PYTHON"
    fi
fi
"$PY" -c "import tree_sitter, tree_sitter_swift" || fail "tree-sitter is not importable"

step "FFI library and bindings generator"
if [ -n "${AMANAT_FFI_LIB:-}" ] && [ -n "${AMANAT_UNIFFI_BINDGEN:-}" ]; then
    LIB="$AMANAT_FFI_LIB"
    BINDGEN="$AMANAT_UNIFFI_BINDGEN"
    echo "prebuilt: $LIB"
else
    cargo build --locked -p amanat-ffi --lib --bins
    LIB="$TARGET/debug/libamanat_ffi.so"
    BINDGEN="$TARGET/debug/uniffi-bindgen"
fi
[ -f "$LIB" ] || fail "no $LIB"
[ -x "$BINDGEN" ] || fail "no $BINDGEN"

step "generate the Swift bindings into $OUT/bindings (never committed)"
rm -rf "$OUT"
mkdir -p "$OUT"
"$BINDGEN" generate --library "$LIB" --language swift --no-format --out-dir "$OUT/bindings" >/dev/null
BINDINGS="$OUT/bindings/AmanatCore.swift"
[ -s "$BINDINGS" ] || fail "no generated $BINDINGS"

passed=0
failed=0
check() {
    local name="$1"
    shift
    step "$name"
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        echo "FAILED: $name"
    fi
}

CHECK="$REPO/ios/checks/swiftcheck.py"
check "parse: every Swift file under ios/" "$PY" "$CHECK" parse ios
check "names: the shell against the generated AmanatCore.swift" \
    "$PY" "$CHECK" names "$BINDINGS" ios ios/checks/platform-names.txt
check "strings: en/ru/uz" "$PY" "$CHECK" strings ios/Amanat/Resources ios
check "build-xcframework.sh is valid bash and refuses to run off macOS" \
    bash -c 'bash -n ios/build-xcframework.sh && { [ "$(uname -s)" = Darwin ] || ! bash ios/build-xcframework.sh 2>/dev/null; }'
check "unit tests of the checker" env AMANAT_SWIFT_BINDINGS="$BINDINGS" \
    "$PY" -W error::ResourceWarning -m unittest discover -s ios/checks -p 'test_*.py'

echo
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
