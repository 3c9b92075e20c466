#!/usr/bin/env bash
# Debian packages the test suite talks to for real: PostgreSQL (store and source tests),
# Prometheus and promtool (scrape and rule tests), systemd-analyze (the unit file), Chromium
# (the weekly report's HTML and the status page), the Pango/HarfBuzz libraries and a font that
# WeasyPrint needs to print the report as PDF, and poppler-utils (pdftoppm: the PDF's first
# page as the PNG in docs/). Installs only what is missing; needs root for that.
set -euo pipefail
missing=()
has_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
command -v pg_isready >/dev/null 2>&1 || missing+=(postgresql)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
for pkg in libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core; do
  has_pkg "$pkg" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
