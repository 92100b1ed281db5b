#!/usr/bin/env bash
# Bring up the real servers the test suite uses, on 127.0.0.1, on a Debian machine where none
# of them may be installed or running: PostgreSQL 15 (5432), Redis (6379), and what the other
# tests call (Chromium for the console page, nginx and wrk for bench/gateway.py, promtool from
# Prometheus, Java 17 and Maven for Apache Kafka). Apache Kafka itself is started by the test
# fixture from jars fetched here once (`shop kafka --fetch-only`).
#
# Idempotent: on a machine where everything is installed, configured and running it changes
# nothing and takes seconds. Run it as root (it uses apt-get and pg_ctlcluster); docs/servers.md
# gives the same steps for a laptop.
set -euo pipefail

PG_VERSION=15
PG_PORT=5432
REDIS_PORT=6379
say() { echo "servers: $*"; }

# --- packages: install only what is missing, with one apt-get update ------------------------
declare -A PACKAGE_OF=(
  ["/usr/lib/postgresql/$PG_VERSION/bin/postgres"]="postgresql-$PG_VERSION"
  [/usr/bin/redis-server]=redis-server
  [/usr/bin/chromium]=chromium
  [/usr/sbin/nginx]=nginx
  [/usr/bin/wrk]=wrk
  [/usr/bin/promtool]=prometheus
  [/usr/bin/java]=openjdk-17-jre-headless
  [/usr/bin/mvn]=maven
)
missing=()
for path in "${!PACKAGE_OF[@]}"; do
  [ -x "$path" ] || missing+=("${PACKAGE_OF[$path]}")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  # Packages must not start their own daemons (nginx on :80, prometheus on :9090): what the
  # tests need is started below, on loopback, the way the tests expect it.
  policy=/usr/sbin/policy-rc.d
  own_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && own_policy=1
  fi
  trap '[ "$own_policy" = 1 ] && rm -f "$policy"' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  [ "$own_policy" = 1 ] && rm -f "$policy"
  trap - EXIT
fi

# --- PostgreSQL: a cluster on 127.0.0.1:5432, trust from loopback, two-phase commit on ------
PG_ETC="/etc/postgresql/$PG_VERSION/main"
if [ ! -d "$PG_ETC" ]; then
  say "creating the PostgreSQL $PG_VERSION cluster"
  pg_createcluster --port "$PG_PORT" "$PG_VERSION" main >/dev/null
fi

# Written only when it differs, so a second run leaves the files (and the server) alone.
write_if_changed() {  # path, content
  if [ ! -f "$1" ] || [ "$(cat "$1")" != "$2" ]; then
    printf '%s\n' "$2" >"$1"
    return 0
  fi
  return 1
}
pg_changed=0
mkdir -p "$PG_ETC/conf.d"
# Dual write across two PostgreSQL databases uses two-phase commit (docs/dualwrite.md).
write_if_changed "$PG_ETC/conf.d/strangler-shop.conf" "# Strangler Shop tests (infra/servers.sh)
listen_addresses = '127.0.0.1'
port = $PG_PORT
max_prepared_transactions = 64" && pg_changed=1
# The tests connect as postgres without a password, from loopback only.
hba="$PG_ETC/pg_hba.conf"
trust="host all all 127.0.0.1/32 trust # strangler-shop"
if ! grep -qxF "$trust" "$hba"; then
  { echo "$trust"; cat "$hba"; } >"$hba.new" && mv "$hba.new" "$hba"
  chown postgres:postgres "$hba"
  pg_changed=1
fi

pg_up() { pg_isready -h 127.0.0.1 -p "$PG_PORT" -q 2>/dev/null; }
pg_running() { pg_lsclusters -h | awk -v v="$PG_VERSION" '$1 == v && $2 == "main" {print $4}' | grep -q online; }
if pg_running && [ "$pg_changed" = 1 ]; then
  say "restarting PostgreSQL for the new settings"
  pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main restart
elif ! pg_running; then
  say "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$PG_VERSION" main start
fi
for _ in $(seq 60); do pg_up && break; sleep 0.5; done
pg_up || { echo "PostgreSQL is not answering on 127.0.0.1:$PG_PORT" >&2; exit 1; }
prepared=$(psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -Atc "SHOW max_prepared_transactions")
if [ "$prepared" = "0" ]; then
  echo "PostgreSQL runs with max_prepared_transactions = 0; two-phase dual write needs more" >&2
  exit 1
fi

# --- Redis: no persistence, loopback only --------------------------------------------------
redis_up() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }
if ! redis_up; then
  say "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --logfile /tmp/strangler-shop-redis.log >/dev/null
fi
for _ in $(seq 60); do redis_up && break; sleep 0.5; done
redis_up || { echo "Redis is not answering on 127.0.0.1:$REDIS_PORT" >&2; exit 1; }

say "PostgreSQL $PG_VERSION on 127.0.0.1:$PG_PORT (max_prepared_transactions=$prepared), Redis on 127.0.0.1:$REDIS_PORT"
