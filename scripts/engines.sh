# The engines a cluster runs on, started for the tests: sourced by scripts/test (and usable by
# hand: `source scripts/engines.sh; start_nats; echo "$FGS_TEST_NATS_URL"`).
#
# Each start_* function uses the running engine its FGS_TEST_*_URL names, if set; else it
# installs the Debian package when missing (as root), starts a throwaway server in a temporary
# directory on a free port of 127.0.0.1, exports the URL and registers its stop. stop_engines
# stops and removes everything started here; the caller traps it on EXIT.
# Without the package and without root, the tests that need the engine skip, unless
# FGS_TEST_REQUIRE_ENGINES=1 (scripts/test sets it), where that is a failure.

ENGINE_STOPS=()

stop_engines() {
  local s
  for s in "${ENGINE_STOPS[@]}"; do
    eval "$s" || true
  done
  ENGINE_STOPS=()
}

# A TCP port nothing listens on right now.
engine_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Installs Debian package $2 unless command $1 exists; fails only when engines are required.
engine_install() {
  command -v "$1" >/dev/null 2>&1 && return 0
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "installing $2"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
    return 0
  fi
  if [[ ${FGS_TEST_REQUIRE_ENGINES:-} == 1 ]]; then
    echo "engines: $2 is required (FGS_TEST_REQUIRE_ENGINES=1); install it as root" >&2
    return 1
  fi
  echo "engines: $2 is not installed; the tests that need it skip"
  return 2
}

# Waits until 127.0.0.1:$1 accepts connections, at most 10 s.
engine_wait_port() {
  local i
  for ((i = 0; i < 200; i++)); do
    (: </dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  return 1
}

# A throwaway `nats-server -js`; exports FGS_TEST_NATS_URL.
start_nats() {
  if [[ -n ${FGS_TEST_NATS_URL:-} ]]; then
    echo "NATS: using $FGS_TEST_NATS_URL"
    return 0
  fi
  local rc=0
  engine_install nats-server nats-server || rc=$?
  ((rc == 2)) && return 0
  ((rc == 0)) || return 1
  local dir port pid
  dir=$(mktemp -d -t fgs-nats.XXXXXX)
  port=$(engine_free_port)
  nats-server -js -a 127.0.0.1 -p "$port" -sd "$dir/jetstream" >"$dir/nats.log" 2>&1 &
  pid=$!
  ENGINE_STOPS+=("kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf '$dir'")
  if ! engine_wait_port "$port"; then
    echo "engines: nats-server did not start:" >&2
    cat "$dir/nats.log" >&2
    return 1
  fi
  export FGS_TEST_NATS_URL="nats://127.0.0.1:$port"
  echo "NATS: started $FGS_TEST_NATS_URL (pid $pid, store $dir)"
}

# The directory of PostgreSQL's server programs (Debian keeps them out of PATH).
postgres_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x $d/initdb && -x $d/pg_ctl ]] && { echo "$d"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return 0; }
  return 1
}

# Runs a PostgreSQL program as the `postgres` user when root (initdb refuses root).
run_pg() {
  if [[ $(id -u) == 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# A throwaway PostgreSQL: Debian's `postgresql`, `initdb` in a temporary directory (as the
# `postgres` user when root), trust authentication, a free port on 127.0.0.1 and the socket in
# the same directory. Exports FGS_TEST_POSTGRES_URL, a superuser's URL: the tests create a
# database each.
start_postgres() {
  if [[ -n ${FGS_TEST_POSTGRES_URL:-} ]]; then
    echo "PostgreSQL: using FGS_TEST_POSTGRES_URL"
    return 0
  fi
  local bindir rc=0
  if ! bindir=$(postgres_bindir); then
    engine_install pg_ctlcluster postgresql || rc=$?
    ((rc == 2)) && return 0
    ((rc == 0)) || return 1
    bindir=$(postgres_bindir) || { echo "engines: no initdb after installing postgresql" >&2; return 1; }
  fi
  local dir port
  dir=$(mktemp -d -t fgs-pg.XXXXXX)
  port=$(engine_free_port)
  [[ $(id -u) == 0 ]] && chown postgres: "$dir"
  ENGINE_STOPS+=("run_pg '$bindir/pg_ctl' -D '$dir/data' -m immediate stop >/dev/null 2>&1; rm -rf '$dir'")
  if ! run_pg "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1; then
    echo "engines: initdb failed:" >&2
    cat "$dir/initdb.log" >&2
    return 1
  fi
  if ! run_pg "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400" start >/dev/null; then
    echo "engines: PostgreSQL did not start:" >&2
    cat "$dir/server.log" >&2
    return 1
  fi
  export FGS_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
  echo "PostgreSQL: started $FGS_TEST_POSTGRES_URL (data $dir)"
}

# A throwaway OCI registry (Debian's `docker-registry`) on a free port of 127.0.0.1, storing in a
# temporary directory, and `skopeo`, which the image tests push with. Exports FGS_TEST_REGISTRY
# (`127.0.0.1:PORT`).
start_registry() {
  if [[ -n ${FGS_TEST_REGISTRY:-} ]]; then
    echo "registry: using $FGS_TEST_REGISTRY"
    return 0
  fi
  local rc=0
  engine_install skopeo skopeo || rc=$?
  ((rc == 2)) && return 0
  ((rc == 0)) || return 1
  engine_install docker-registry docker-registry || rc=$?
  ((rc == 2)) && return 0
  ((rc == 0)) || return 1
  local dir port pid
  dir=$(mktemp -d -t fgs-registry.XXXXXX)
  port=$(engine_free_port)
  cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: error
storage:
  filesystem:
    rootdirectory: $dir/data
http:
  addr: 127.0.0.1:$port
YAML
  docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
  pid=$!
  ENGINE_STOPS+=("kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf '$dir'")
  if ! engine_wait_port "$port"; then
    echo "engines: docker-registry did not start:" >&2
    cat "$dir/registry.log" >&2
    return 1
  fi
  export FGS_TEST_REGISTRY="127.0.0.1:$port"
  echo "registry: started $FGS_TEST_REGISTRY (pid $pid, store $dir)"
}
