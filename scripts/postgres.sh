# Throwaway PostgreSQL for the test suite; sourced by scripts/test.sh.
#
#   postgres_start  installs Debian's server if missing, starts a fresh cluster in a temp
#                   folder and exports CAREERBOT_TEST_POSTGRES_URL (and POSTGRES_SOCKET_DIR)
#   postgres_stop   stops it and deletes the folder; safe to call twice, or after a failed
#                   start, so it can sit in an EXIT trap
#
# The cluster listens only on a Unix socket inside its own folder: no TCP port, so it never
# clashes with a system PostgreSQL or a parallel run, and nothing outside can reach it.

POSTGRES_SOCKET_DIR=

# Run a PostgreSQL server binary: the server refuses to run as root, so as root go through
# the postgres system user (Debian's package creates it); otherwise run as ourselves.
_pg_run() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# initdb and pg_ctl are not on PATH: Debian puts them in /usr/lib/postgresql/<major>/bin.
# Prints the newest installed major's bin folder, or nothing.
_pg_bindir() {
    local initdb
    initdb=$(printf '%s\n' /usr/lib/postgresql/*/bin/initdb | sort -V | tail -n 1)
    if [ -x "$initdb" ]; then dirname "$initdb"; fi
}

postgres_install() {
    [ -n "$(_pg_bindir)" ] && return 0
    local sudo
    sudo=$([ "$(id -u)" = 0 ] || echo sudo)
    # Same as for Chromium in test.sh: refresh the lists only when something must be installed.
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
}

postgres_start() {
    postgres_install
    local bin user
    bin=$(_pg_bindir)
    [ -n "$bin" ] || { echo "postgres.sh: no initdb in /usr/lib/postgresql/*/bin" >&2; return 1; }
    user=$(if [ "$(id -u)" = 0 ]; then echo postgres; else id -un; fi)
    # Under /tmp rather than $TMPDIR: the postgres user must be able to reach it, and the
    # socket path (folder + /.s.PGSQL.5432) must stay under the ~107-byte Unix limit.
    POSTGRES_SOCKET_DIR=$(mktemp -d /tmp/careerbot-pg.XXXXXX)
    if [ "$(id -u)" = 0 ]; then chown postgres: "$POSTGRES_SOCKET_DIR"; fi
    local data=$POSTGRES_SOCKET_DIR/data
    # Trust auth is fine: only the socket in our private folder accepts connections.
    # --no-locale: do not depend on which locales the machine has generated.
    _pg_run "$bin/initdb" -D "$data" -U "$user" --auth=trust --no-locale -E UTF8 --no-sync \
        >/dev/null
    # Durability is pointless for a cluster deleted at the end; turning it off is faster.
    cat >>"$data/postgresql.conf" <<EOF
listen_addresses = ''
unix_socket_directories = '$POSTGRES_SOCKET_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    # -w -t 30: wait until it accepts connections, at most 30 s.
    if ! _pg_run "$bin/pg_ctl" -D "$data" -l "$POSTGRES_SOCKET_DIR/server.log" -w -t 30 start \
        >/dev/null; then
        echo "postgres.sh: PostgreSQL did not start (or not within 30 s); server log:" >&2
        tail -n 20 "$POSTGRES_SOCKET_DIR/server.log" >&2 || true
        return 1
    fi
    _pg_run "$bin/createdb" -h "$POSTGRES_SOCKET_DIR" -U "$user" careerbot_test
    export POSTGRES_SOCKET_DIR
    export CAREERBOT_TEST_POSTGRES_URL="postgresql+psycopg://$user@/careerbot_test?host=$POSTGRES_SOCKET_DIR"
}

postgres_stop() {
    [ -n "$POSTGRES_SOCKET_DIR" ] || return 0
    local bin
    bin=$(_pg_bindir)
    # The server may already be gone (never started, or killed by the same Ctrl-C).
    if [ -f "$POSTGRES_SOCKET_DIR/data/postmaster.pid" ]; then
        _pg_run "$bin/pg_ctl" -D "$POSTGRES_SOCKET_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$POSTGRES_SOCKET_DIR"
    POSTGRES_SOCKET_DIR=
    unset CAREERBOT_TEST_POSTGRES_URL
}
