#!/usr/bin/env bash
# The HQ review console (`amanat hq console`) end to end in a real headless Chromium: installs
# Debian's chromium and chromium-driver (idempotent; both ship together, same version), then runs
# server/tests/console_browser.rs, which starts chromedriver on 127.0.0.1 and drives the browser
# over WebDriver. AMANAT_REQUIRE_BROWSER=1 turns the test's "skipped: no browser" into a failure.
# Screenshots land in target/console-screenshots/ (AMANAT_UPDATE_SCREENSHOTS=1: docs/console/). About 15 s once built (the world:
# org, relay, two devices, two HQ installations).
# Toolchain notes: Debian bookworm ships chromium and chromium-driver from bookworm-security
# (156.x here; no Google repository needed); as root the browser needs --no-sandbox. chromedriver
# keeps HTTP connections alive, so the test's small WebDriver client reads by Content-Length.
# Under `Referrer-Policy: no-referrer` Chromium sends `Origin: null` on the page's own form posts
# (the console accepts null only with `Sec-Fetch-Site: same-origin`).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! [ -x /usr/bin/chromium ] || ! [ -x /usr/bin/chromedriver ]; then
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends \
        chromium chromium-driver
fi
export AMANAT_REQUIRE_BROWSER=1
cargo test -p amanat-server --locked --test console_browser
