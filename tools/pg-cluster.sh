#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests (CI and developers). Installs nothing: it needs the
# server binaries (Debian: apt-get install postgresql libpq-dev; .ci/run does that).
#
#   tools/pg-cluster.sh start DIR   create (first time) and start a cluster in DIR; print its env
#   tools/pg-cluster.sh env DIR     print the env lines of the cluster in DIR
#   tools/pg-cluster.sh stop DIR    stop it (pg_ctl stop -m fast) and remove DIR
#
# `eval "$(tools/pg-cluster.sh start /tmp/orgctl-pg)"` exports:
#   ORGCTL_TEST_POSTGRES            postgresql:///postgres?host=DIR&port=PORT&user=postgres
#                                   (the Unix socket in DIR, trust: the superuser without a password)
#   ORGCTL_TEST_POSTGRES_TCP        postgresql://orgctl_pw@127.0.0.1:PORT/postgres (scram-sha-256)
#   ORGCTL_TEST_POSTGRES_PASSWORD   orgctl_pw's password (a role with no other rights)
#   ORGCTL_TEST_PGDATA              DIR/data
#   ORGCTL_TEST_PGCTL               the pg_ctl of the server
#   ORGCTL_TEST_PGUSER_RUN          the prefix that runs pg_ctl as the cluster's owner
#                                   ("runuser -u postgres --" as root, empty otherwise), e.g.
#                                   $ORGCTL_TEST_PGUSER_RUN $ORGCTL_TEST_PGCTL -D $ORGCTL_TEST_PGDATA -m immediate -w restart
#
# The cluster: UTF8, locale C, one loopback port chosen free at creation, the Unix socket in DIR,
# ssl=off, logs in DIR/log (so pg_ctl needs no -l on a restart), fsync=off (a killed server loses
# nothing; only a machine crash could). initdb refuses to run as root, so as root the cluster
# belongs to the Debian `postgres` user (or `orgctl-pg`, created when there is no such user).
# Idempotent: start on a running cluster only prints its env; stop on a missing DIR does nothing.
set -euo pipefail

usage() {
    echo "usage: tools/pg-cluster.sh start|stop|env DIR" >&2
    exit 64
}
die() {
    echo "pg-cluster: $*" >&2
    exit 1
}

[ $# -eq 2 ] || usage
command=$1
case "$2" in
    /*) dir=$2 ;;
    *) dir="$PWD/$2" ;;
esac
dir=${dir%/}
# The directory goes into a URI and a socket path unquoted: keep it plain and short (a Unix socket
# path holds at most 107 bytes, and DIR/.s.PGSQL.PORT must fit).
[[ "$dir" =~ ^[A-Za-z0-9/._-]+$ ]] || die "DIR may hold only letters, digits and / . _ - (got '$dir')"
[ ${#dir} -le 80 ] || die "DIR is too long for a Unix socket path (at most 80 characters): $dir"
marker="$dir/.orgctl-pg-cluster"

# The server's binaries: pg_config's, else the newest Debian cluster version, else PATH.
bindir=""
if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then
    bindir=$(pg_config --bindir)
fi
if [ -z "$bindir" ]; then
    for candidate in /usr/lib/postgresql/*/bin; do
        [ -x "$candidate/initdb" ] && bindir=$candidate
    done
fi
if [ -z "$bindir" ] && command -v initdb >/dev/null; then
    bindir=$(dirname "$(command -v initdb)")
fi

# Who runs the server: root may not, so it becomes `postgres` (or a user made for it).
run=()
owner=$(id -un)
if [ "$(id -u)" = 0 ]; then
    if id postgres >/dev/null 2>&1; then
        owner=postgres
    else
        owner=orgctl-pg
        id "$owner" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$owner" \
            || die "cannot create the unprivileged user $owner for the server"
    fi
    run=(runuser -u "$owner" --)
fi

print_env() {
    local port password
    port=$(cat "$dir/port")
    password=$(cat "$dir/orgctl_pw.password")
    echo "export ORGCTL_TEST_POSTGRES='postgresql:///postgres?host=$dir&port=$port&user=postgres'"
    echo "export ORGCTL_TEST_POSTGRES_TCP='postgresql://orgctl_pw@127.0.0.1:$port/postgres'"
    echo "export ORGCTL_TEST_POSTGRES_PASSWORD='$password'"
    echo "export ORGCTL_TEST_PGDATA='$dir/data'"
    echo "export ORGCTL_TEST_PGCTL='$bindir/pg_ctl'"
    echo "export ORGCTL_TEST_PGUSER_RUN='${run[*]}'"
}

running() {
    [ -f "$dir/data/postmaster.pid" ] && "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    [ -n "$bindir" ] || die "the PostgreSQL server is not installed (no initdb; Debian: apt-get install postgresql libpq-dev)"
    if [ -e "$dir" ] && [ ! -f "$marker" ] && [ -n "$(ls -A "$dir" 2>/dev/null)" ]; then
        die "$dir exists and is not a cluster made by this script: give an empty or new directory"
    fi
    if [ ! -f "$dir/data/PG_VERSION" ]; then
        mkdir -p "$dir"
        chmod 755 "$dir"
        touch "$marker"
        chown "$owner" "$dir"
        "${run[@]}" test -x "$dir" || die "the user $owner cannot enter $dir: make its parent folders searchable"
        # The password of the TCP role; the file keeps `env` and a second `start` stable.
        od -An -tx1 -N12 /dev/urandom | tr -d ' \n' >"$dir/orgctl_pw.password"
        chmod 644 "$dir/orgctl_pw.password"
        free_port >"$dir/port"
        "${run[@]}" "$bindir/initdb" -D "$dir/data" -U postgres --encoding=UTF8 --locale=C \
            --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
            || die "initdb failed (see $dir/initdb.log): $(tail -n 3 "$dir/initdb.log" | tr '\n' ' ')"
        cat >>"$dir/data/postgresql.conf" <<EOF

# tools/pg-cluster.sh
listen_addresses = '127.0.0.1'
port = $(cat "$dir/port")
unix_socket_directories = '$dir'
ssl = off
password_encryption = 'scram-sha-256'
fsync = off
full_page_writes = off
logging_collector = on
log_directory = '$dir/log'
log_filename = 'postgresql.log'
max_connections = 100
EOF
        mkdir -p "$dir/log"
        chown "$owner" "$dir/log"
    fi
    if ! running; then
        "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -w -t 60 -l "$dir/log/startup.log" start >/dev/null 2>&1 \
            || die "the server did not start (see $dir/log): $(tail -n 3 "$dir/log/startup.log" "$dir/log/postgresql.log" 2>/dev/null | tr '\n' ' ')"
    fi
    local port psql
    port=$(cat "$dir/port")
    psql=("$bindir/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$port" -U postgres -d postgres)
    "${psql[@]}" -c "DO \$\$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orgctl_pw') THEN
                CREATE ROLE orgctl_pw LOGIN;
            END IF;
        END \$\$;" >/dev/null || die "cannot connect to the new server on $dir (port $port)"
    "${psql[@]}" -c "ALTER ROLE orgctl_pw PASSWORD '$(cat "$dir/orgctl_pw.password")'" >/dev/null \
        || die "cannot set the password of orgctl_pw"
    print_env
}

stop() {
    [ -e "$dir" ] || return 0
    [ -f "$marker" ] || die "$dir was not made by this script: not removing it"
    if [ -n "$bindir" ] && running; then
        "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 \
            || "${run[@]}" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

case "$command" in
    start) start ;;
    stop) stop ;;
    env)
        [ -f "$dir/port" ] || die "no cluster in $dir (run: tools/pg-cluster.sh start $dir)"
        print_env
        ;;
    *) usage ;;
esac
