#!/usr/bin/env bash
# Install what the course hub (python -m autograder hub, tests/classroom/test_hub.py) needs from Debian:
#   configurable-http-proxy  JupyterHub's proxy (Debian's node-configurable-http-proxy; npm's
#                            configurable-http-proxy into build/node when apt is not there)
#   postgresql               the gradebook server for --db-url postgresql://... (tests start a
#                            private one under build/)
#   python3-venv             the students' environment is a venv of Debian's python3, which every
#                            account can run (a pyenv Python under /root is not)
# Idempotent: installs only what is missing. Needs root for apt; otherwise prints the command
# and exits 0, so `make test` still runs (the hub tests then skip, or fail when CI is set).
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v configurable-http-proxy >/dev/null 2>&1 || [ -x build/node/node_modules/.bin/configurable-http-proxy ] \
    || need+=(node-configurable-http-proxy)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
/usr/bin/python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need+=(python3-venv)
[ ${#need[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
elif command -v npm >/dev/null 2>&1 && [ "${need[*]}" = "node-configurable-http-proxy" ]; then
    npm install --prefix build/node --no-save --silent configurable-http-proxy@5.3.0
else
    echo "install_hub.sh: to run the course hub install (as root):" >&2
    echo "    apt-get install -y --no-install-recommends ${need[*]}" >&2
fi
