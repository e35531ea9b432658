#!/usr/bin/env bash
# Installs Debian's chromium for the labeling page's browser test (tests/integration/test_labeling_page.py),
# which drives it with Playwright for Python. Playwright's own browser download is never used: the test
# launches /usr/bin/chromium. Does nothing when chromium is there already; needs root (or sudo) otherwise.
#
# Usage: deploy/tools/install-chromium.sh
set -euo pipefail

if command -v chromium >/dev/null 2>&1 && [[ -x /usr/bin/chromium ]]; then
    echo "install-chromium.sh: chromium is installed already (/usr/bin/chromium)"
    exit 0
fi

if [[ $(id -u) -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1; then
    sudo=(sudo)
else
    echo "install-chromium.sh: chromium is missing and this user cannot install packages (no root, no sudo)" >&2
    exit 1
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-chromium.sh: no apt-get here; install chromium with this system's package manager" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
test -x /usr/bin/chromium
echo "install-chromium.sh: installed $(/usr/bin/chromium --version 2>/dev/null || echo chromium)"
