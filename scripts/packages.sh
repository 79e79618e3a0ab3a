#!/usr/bin/env bash
# Make sure the Debian tools some tests and benchmarks drive are installed:
#   scripts/packages.sh COMMAND=PACKAGE[,PACKAGE…] …   e.g. nginx=nginx promtool=prometheus
# Quick when every command is already there; installs the missing ones as root with apt-get;
# otherwise stops with one line saying what to install.
set -uo pipefail

log() { echo "packages: $*" >&2; }

missing=()
for spec in "$@"; do
    command=${spec%%=*}
    packages=${spec#*=}
    if ! command -v "$command" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$command" ] \
        && [ ! -x "/usr/lib/chromium/$command" ]; then
        missing+=(${packages//,/ })
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    log "missing: install the Debian packages '${missing[*]}' (as root: apt-get install ${missing[*]})"
    exit 1
fi
log "installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 || {
    log "apt-get install ${missing[*]} failed"; exit 1; }
