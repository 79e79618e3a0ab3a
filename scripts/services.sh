#!/usr/bin/env bash
# Make sure MariaDB (127.0.0.1:3306) and Redis (127.0.0.1:6379) answer on loopback.
# Started if installed but stopped; installed from Debian's packages when absent (as root);
# otherwise stop with one line saying what to install.
set -uo pipefail

DB_HOST=${TEST_DB_HOST:-127.0.0.1}
DB_PORT=${TEST_DB_PORT:-3306}
REDIS_PORT=${TEST_REDIS_PORT:-6379}

log() { echo "services: $*" >&2; }

wait_for() {  # wait_for NAME CHECK-COMMAND...
    local name=$1; shift
    for _ in $(seq 1 60); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
    log "$name did not come up within 30 s"; return 1
}

mariadb_up() { mariadb-admin --protocol=tcp -h "$DB_HOST" -P "$DB_PORT" -uroot ping >/dev/null 2>&1; }
redis_up() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

apt_install() {
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        log "$1 is not installed: install the Debian packages '$2' (as root: apt-get install $2)"
        exit 1
    fi
    log "installing $2"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $2 >/dev/null || {
        log "apt-get install $2 failed"; exit 1; }
}

ensure_mariadb() {
    command -v mariadb-admin >/dev/null && mariadb_up && return 0
    [ -x /usr/sbin/mariadbd ] || apt_install MariaDB "mariadb-server mariadb-client"
    mariadb_up && return 0
    log "starting MariaDB"
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd -- --user=mysql \
        || /usr/sbin/mariadbd --user=mysql >/dev/null 2>&1 &
    wait_for MariaDB mariadb_up || exit 1
    # A fresh Debian install lets root in over the socket only; the tests connect over TCP.
    mariadb -uroot -e "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('') OR unix_socket" 2>/dev/null || true
}

ensure_redis() {
    command -v redis-cli >/dev/null && redis_up && return 0
    command -v redis-server >/dev/null || apt_install Redis redis-server
    redis_up && return 0
    log "starting Redis"
    mkdir -p /var/lib/redis /var/log/redis
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" \
        --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null
    wait_for Redis redis_up || exit 1
}

ensure_mariadb
ensure_redis
log "MariaDB and Redis are up"
