#!/usr/bin/env bash
# Start Postgres and Redis if they are down, then create the database DATABASE_URL names if missing.
set -euo pipefail

if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
  echo "Starting PostgreSQL..."
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
fi
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  echo "Starting Redis..."
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no
  for _ in $(seq 1 30); do redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && break; sleep 1; done
fi
# The database DATABASE_URL names (confwatch by default), created if missing; only on the
# local server this script starts (another host's database is its owner's to create).
url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/confwatch}"
name="${url##*/}"
name="${name%%\?*}"
case "$url" in
  *[@/]127.0.0.1[:/]*|*[@/]localhost[:/]*) ;;
  *) exit 0 ;;
esac
if ! [[ "$name" =~ ^[A-Za-z0-9_]+$ ]]; then
  echo "DATABASE_URL names the database '$name': use letters, digits and _ only." >&2
  exit 1
fi
if ! psql -h 127.0.0.1 -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$name'" | grep -q 1; then
  createdb -h 127.0.0.1 -U postgres "$name"
fi
