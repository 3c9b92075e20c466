#!/usr/bin/env bash
# Debian packages the test suite talks to for real: PostgreSQL (store and source tests),
# Prometheus and promtool (scrape and rule tests), systemd-analyze (the unit file) and
# Chromium (the weekly report's HTML). Installs only what is missing; needs root for that.
set -euo pipefail
missing=()
command -v pg_isready >/dev/null 2>&1 || missing+=(postgresql)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || missing+=(systemd)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing Debian packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
    exit 1
  fi
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
