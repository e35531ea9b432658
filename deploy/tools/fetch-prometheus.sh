#!/usr/bin/env bash
# Puts promtool and prometheus (Debian's `prometheus` package, unpacked, not installed: no service, no
# user, no dependencies) under .tools/prometheus/usr/bin/, for the checks in tests/deploy/.
# Idempotent: does nothing when both binaries are there and run. Runs `apt-get update` only when the
# download fails (stale or missing package lists).
#
# Usage: deploy/tools/fetch-prometheus.sh [DEST]    (default: <repo>/.tools/prometheus)
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
dest=${1:-$repo/.tools/prometheus}
bin=$dest/usr/bin

if [[ -x $bin/promtool && -x $bin/prometheus ]] && "$bin/promtool" --version >/dev/null 2>&1; then
    echo "fetch-prometheus: $("$bin/promtool" --version 2>&1 | head -n 1) already in $bin"
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# apt downloads as the unprivileged _apt user when it can write the directory (else it warns).
chmod 0755 "$work"
chown _apt "$work" 2>/dev/null || true

download() { (cd "$work" && apt-get download -qq prometheus); }
if ! download; then
    echo "fetch-prometheus: download failed; running apt-get update and trying again" >&2
    if [[ $(id -u) -eq 0 ]]; then
        apt-get update -qq
    else
        sudo apt-get update -qq
    fi
    download
fi

deb=$(find "$work" -maxdepth 1 -name 'prometheus_*.deb' -print -quit)
dpkg-deb -x "$deb" "$work/root"
rm -rf "$dest"
mkdir -p "$bin"
mv "$work/root/usr/bin/promtool" "$work/root/usr/bin/prometheus" "$bin/"
"$bin/promtool" --version >/dev/null
echo "fetch-prometheus: $("$bin/promtool" --version 2>&1 | head -n 1) in $bin"
