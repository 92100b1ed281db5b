#!/usr/bin/env bash
# Bring up the real servers the test suite uses, on 127.0.0.1, on a Debian machine where none
# of them may be installed or running: PostgreSQL 15 (5432), Redis (6379), and what the other
# tests call (Chromium for the console page, nginx and wrk for bench/gateway.py, promtool from
# Prometheus, Java 17 and Maven for Apache Kafka), and FerretDB (27017), a MongoDB-wire server
# over SQLite that the read model's MongoDB store is tested against, built once from the Go
# module proxy into a cache outside the repo. Apache Kafka itself is started by the test fixture
# from jars fetched here once (`shop kafka --fetch-only`).
#
# Idempotent: on a machine where everything is installed, configured and running it changes
# nothing and takes seconds. Run it as root (it uses apt-get and pg_ctlcluster); docs/servers.md
# gives the same steps for a laptop.
set -euo pipefail

PG_VERSION=15
PG_PORT=5432
REDIS_PORT=6379
MONGO_PORT=27017
FERRETDB_VERSION=v1.24.2
say() { echo "servers: $*"; }

# --- packages: install only what is missing, with one apt-get update ------------------------
declare -A PACKAGE_OF=(
  ["/usr/lib/postgresql/$PG_VERSION/bin/postgres"]="postgresql-$PG_VERSION"
  [/usr/bin/redis-server]=redis-server
  [/usr/bin/chromium]=chromium
  [/usr/sbin/nginx]=nginx
  [/usr/bin/wrk]=wrk
  [/usr/bin/promtool]=prometheus
  [/usr/bin/prometheus]=prometheus
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

# --- FerretDB: a MongoDB-wire server over SQLite files, loopback only, no auth ------------
# Built from its module's source rather than by `go install ...@version`: the binary refuses
# to start unless build/version/version.txt (generated from git in FerretDB's own tree, absent
# from the module zip) names its version, so the build writes that file first.
FERRETDB_HOME="${XDG_CACHE_HOME:-$HOME/.cache}/shop/ferretdb-$FERRETDB_VERSION"
FERRETDB="$FERRETDB_HOME/bin/ferretdb"
FERRETDB_STATE="${XDG_STATE_HOME:-$HOME/.local/state}/shop/ferretdb"
if [ ! -x "$FERRETDB" ]; then
  go_bin=$(command -v go || echo /usr/local/go/bin/go)
  [ -x "$go_bin" ] || { echo "FerretDB is built with Go, and no go is installed" >&2; exit 1; }
  say "building FerretDB $FERRETDB_VERSION (a few minutes, once)"
  module_dir=$("$go_bin" mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$module_dir" ] || { echo "go mod download gave no FerretDB source" >&2; exit 1; }
  build_dir=$(mktemp -d)
  trap 'chmod -R u+w "$build_dir"; rm -rf "$build_dir"' EXIT
  cp -R "$module_dir/." "$build_dir" && chmod -R u+w "$build_dir"
  echo "$FERRETDB_VERSION" >"$build_dir/build/version/version.txt"
  mkdir -p "$FERRETDB_HOME/bin"
  (cd "$build_dir" && "$go_bin" build -buildvcs=false -trimpath -o "$FERRETDB.new" ./cmd/ferretdb)
  mv "$FERRETDB.new" "$FERRETDB"
  rm -rf "$build_dir"
  trap - EXIT
fi

# The readiness check: a MongoDB `ping` (OP_MSG {ping: 1, $db: "admin"}) answered with ok: 1,
# in the standard library's Python, since no MongoDB client is installed at this point.
mongo_up() {
  python3 - "$MONGO_PORT" <<'PY' 2>/dev/null
import socket, struct, sys
def cstr(s): return s.encode() + b"\0"
body = b"\x10" + cstr("ping") + struct.pack("<i", 1)
body += b"\x02" + cstr("$db") + struct.pack("<i", 6) + cstr("admin")
doc = struct.pack("<i", len(body) + 5) + body + b"\0"
msg = struct.pack("<I", 0) + b"\0" + doc
with socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2) as sock:
    sock.settimeout(2)
    sock.sendall(struct.pack("<iiii", 16 + len(msg), 1, 0, 2013) + msg)
    reply = b""
    while len(reply) < 4 or len(reply) < struct.unpack("<i", reply[:4])[0]:
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit(1)
        reply += chunk
at = reply.find(b"\x01ok\0")
sys.exit(0 if at >= 0 and struct.unpack("<d", reply[at + 4 : at + 12])[0] == 1.0 else 1)
PY
}
if ! mongo_up; then
  say "starting FerretDB"
  mkdir -p "$FERRETDB_STATE/data"
  setsid "$FERRETDB" --handler=sqlite --sqlite-url="file:$FERRETDB_STATE/data/" \
    --listen-addr="127.0.0.1:$MONGO_PORT" --state-dir="$FERRETDB_STATE" --debug-addr=- \
    --telemetry=disable --log-level=WARN >>"$FERRETDB_STATE/ferretdb.log" 2>&1 </dev/null &
fi
for _ in $(seq 60); do mongo_up && break; sleep 0.5; done
mongo_up || {
  echo "FerretDB is not answering a MongoDB ping on 127.0.0.1:$MONGO_PORT" \
    "(log: $FERRETDB_STATE/ferretdb.log)" >&2
  exit 1
}

say "PostgreSQL $PG_VERSION on 127.0.0.1:$PG_PORT (max_prepared_transactions=$prepared), Redis on 127.0.0.1:$REDIS_PORT, FerretDB $FERRETDB_VERSION on 127.0.0.1:$MONGO_PORT"
