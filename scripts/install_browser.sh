#!/usr/bin/env bash
# Install the browser the end-to-end test (tests/notebooks/test_browser.py) drives: Debian's Chromium.
# Playwright's own browser download is never used. Idempotent: does nothing when
# /usr/bin/chromium is already there. Needs root (CI runs as root); otherwise it prints the
# command to run and exits 0, so `make test` still runs (the browser test then skips, or fails
# when CI is set).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
    exit 0
fi

PACKAGES="chromium chromium-driver fonts-dejavu-core"
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update
    apt-get install -y --no-install-recommends $PACKAGES
elif command -v apt-get >/dev/null 2>&1; then
    echo "install_browser.sh: not root; to run the browser test install Chromium with:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends $PACKAGES" >&2
else
    echo "install_browser.sh: no apt-get here; install Chromium so that /usr/bin/chromium exists" >&2
    echo "(or set CHROMIUM=/path/to/chromium) to run the browser test." >&2
fi
