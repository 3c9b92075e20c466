#!/usr/bin/env bash
# Start the local PostgreSQL cluster if it is down, and wait until it accepts connections.
# The tests create (and drop) their own databases on it; they fail, never skip, without it.
set -euo pipefail
host=${PGHOST:-127.0.0.1}
if pg_isready -q -h "$host" -p 5432; then exit 0; fi
if command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  version=$(ls /etc/postgresql | head -n 1)
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
fi
for _ in $(seq 1 30); do
  if pg_isready -q -h "$host" -p 5432; then exit 0; fi
  sleep 1
done
echo "PostgreSQL is not reachable on $host:5432; the database tests need it" >&2
exit 1
