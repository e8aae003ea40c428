#!/usr/bin/env bash
# Builds the Rust core for iOS and generates its Swift bindings (macOS with Xcode and Rust only;
# written from docs/API.md's steps, NOT run on the project's CI, which has no Apple toolchain):
#
#   1. cargo build --release -p amanat-ffi --lib for aarch64-apple-ios (devices),
#      aarch64-apple-ios-sim and x86_64-apple-ios (Simulator on Apple silicon / Intel);
#   2. lipo the two Simulator slices into one fat libamanat_ffi.a;
#   3. uniffi-bindgen (built for the Mac itself) generates AmanatCore.swift, AmanatCoreFFI.h and
#      AmanatCoreFFI.modulemap from the host library, as CI does on Linux;
#   4. xcodebuild -create-xcframework packs device + Simulator libraries with the C header and a
#      module map named module.modulemap (what Xcode looks for) into AmanatCoreFFI.xcframework.
#
# Output (ignored by git, regenerated on every build; generated code is never committed):
#   ios/build/AmanatCoreFFI.xcframework   the static library + C module AmanatCoreFFI
#   ios/build/generated/AmanatCore.swift  compiled into the AmanatKit target (project.yml)
#
# Honours CARGO_TARGET_DIR (default <repo>/target). Usage: ios/build-xcframework.sh [--debug]
# Written for the bash 3.2 that macOS ships (no empty-array expansion under set -u).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO="$(pwd)"
TARGET="${CARGO_TARGET_DIR:-$REPO/target}"
OUT="$REPO/ios/build"
PROFILE=release
CARGO_PROFILE=(--release)
if [ "${1:-}" = "--debug" ]; then
    PROFILE=debug
    CARGO_PROFILE=()
fi

[ "$(uname -s)" = "Darwin" ] || { echo "build-xcframework: needs macOS with Xcode" >&2; exit 1; }
command -v xcodebuild >/dev/null || { echo "build-xcframework: xcodebuild not found (install Xcode)" >&2; exit 1; }

IOS_TARGETS=(aarch64-apple-ios aarch64-apple-ios-sim x86_64-apple-ios)
rustup target add "${IOS_TARGETS[@]}"

# iOS 15 is the deployment target of project.yml; the static library must not need a newer one.
export IPHONEOS_DEPLOYMENT_TARGET=15.0
for t in "${IOS_TARGETS[@]}"; do
    cargo build --locked ${CARGO_PROFILE[@]+"${CARGO_PROFILE[@]}"} -p amanat-ffi --lib --target "$t"
done

# The generator runs on the Mac: build it (and the host library it reads) for the host.
cargo build --locked ${CARGO_PROFILE[@]+"${CARGO_PROFILE[@]}"} -p amanat-ffi --lib --bins
HOST_LIB="$TARGET/$PROFILE/libamanat_ffi.dylib"
[ -f "$HOST_LIB" ] || { echo "build-xcframework: no $HOST_LIB" >&2; exit 1; }

rm -rf "$OUT/generated" "$OUT/headers" "$OUT/sim" "$OUT/AmanatCoreFFI.xcframework"
mkdir -p "$OUT/generated" "$OUT/headers" "$OUT/sim"
"$TARGET/$PROFILE/uniffi-bindgen" generate --library "$HOST_LIB" --language swift \
    --out-dir "$OUT/generated"
mv "$OUT/generated/AmanatCoreFFI.h" "$OUT/headers/"
mv "$OUT/generated/AmanatCoreFFI.modulemap" "$OUT/headers/module.modulemap"

lipo -create \
    "$TARGET/aarch64-apple-ios-sim/$PROFILE/libamanat_ffi.a" \
    "$TARGET/x86_64-apple-ios/$PROFILE/libamanat_ffi.a" \
    -output "$OUT/sim/libamanat_ffi.a"

xcodebuild -create-xcframework \
    -library "$TARGET/aarch64-apple-ios/$PROFILE/libamanat_ffi.a" -headers "$OUT/headers" \
    -library "$OUT/sim/libamanat_ffi.a" -headers "$OUT/headers" \
    -output "$OUT/AmanatCoreFFI.xcframework"

echo "built $OUT/AmanatCoreFFI.xcframework and $OUT/generated/AmanatCore.swift"
