#!/usr/bin/env bash
# Create the virtualenv and install the pinned dependencies: scripts/setup.sh PYTHON VENV
set -euo pipefail
python=${1:-python3}
venv=${2:-.venv}
stamp="$venv/.installed"

# Several make targets may start at once on a fresh clone (`make run &` then `make api-key`):
# one installs while the others wait, then find it done.
exec 9>".setup.lock"
flock 9
if [ -f "$stamp" ] && [ "$stamp" -nt setup.cfg ] && [ "$stamp" -nt pyproject.toml ]; then
    exit 0
fi

"$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
    echo "Python 3.11 or newer is needed ($python is $("$python" --version 2>&1))" >&2; exit 1; }

if [ ! -x "$venv/bin/python" ]; then
    if ! "$python" -m venv "$venv" 2>/dev/null; then
        rm -rf "$venv"
        # Debian splits venv/ensurepip out of python3.
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
            ver=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
            apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python$ver-venv" >/dev/null \
                || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
            "$python" -m venv "$venv"
        else
            echo "Cannot create a virtualenv: install python3-venv (apt-get install python3-venv)" >&2
            exit 1
        fi
    fi
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
# The tests and benchmarks run ClickHouse's engine in process too (POINTS_URL=chdb:///…).
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[dev,clickhouse]'
touch "$stamp"
