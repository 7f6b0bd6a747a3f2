#!/usr/bin/env bash
# Links the command-line tools of this checkout (nstar, sextant, northstar) into a directory
# on PATH, default /usr/local/bin, so that they work from any directory. Symlinks to
# dist/src/cli/*.js (northstar: to bin/northstar, which execs the runtime in its private mount
# namespace as one process): a rebuild needs no new link. Idempotent: a link that already points here
# is left alone, a link to another checkout is moved here, and a file that is not a symlink
# (another installation of a tool of that name) is left alone with a warning.
# Usage: scripts/link-tools.sh [DIR]   (or NORTHSTAR_BIN_DIR=DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DIR=${1:-${NORTHSTAR_BIN_DIR:-/usr/local/bin}}
if ! mkdir -p "$DIR" 2>/dev/null || [ ! -w "$DIR" ]; then
  echo "link-tools: cannot write to $DIR: run as root, or give a directory on your PATH: scripts/link-tools.sh ~/.local/bin" >&2
  exit 1
fi
for tool in nstar sextant northstar; do
  src="$ROOT/dist/src/cli/$tool.js"
  [ "$tool" = northstar ] && src="$ROOT/bin/northstar"
  dst="$DIR/$tool"
  if [ -e "$dst" ] && [ ! -L "$dst" ]; then
    echo "link-tools: $dst exists and is not a symlink: left alone (remove it to use this checkout's $tool)" >&2
    continue
  fi
  [ "$(readlink "$dst" 2>/dev/null || true)" = "$src" ] && continue
  ln -sfn "$src" "$dst"
  echo "link-tools: $dst -> $src"
done
