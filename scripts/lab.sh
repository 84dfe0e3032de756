#!/usr/bin/env bash
# Open the course in JupyterLab: `make lab` runs this (in the repository and in the student edition).
#
#     scripts/lab.sh JUPYTER [FOLDER] [extra jupyter lab arguments...]
#
# As root (containers, cloud VMs, CI) JupyterLab refuses to start unless told --allow-root: it is
# added only then. On a machine without a display (no $DISPLAY or $WAYLAND_DISPLAY, not macOS)
# no browser can open, so it starts with --no-browser and prints the URL to open instead.
set -euo pipefail
JUPYTER=${1:?usage: scripts/lab.sh JUPYTER [FOLDER] [ARGS...]}
FOLDER=${2:-notebooks}
shift $(( $# >= 2 ? 2 : 1 ))
args=(lab "$FOLDER")
if [ "$(id -u)" = 0 ]; then
    echo "lab: running as root, so JupyterLab gets --allow-root"
    args+=(--allow-root)
fi
if [ -z "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ "$(uname -s)" != Darwin ]; then
    echo "lab: no display here: open the http://127.0.0.1:... URL printed below in your browser"
    args+=(--no-browser)
fi
exec "$JUPYTER" "${args[@]}" "$@"
