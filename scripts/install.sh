#!/usr/bin/env bash
# Installs everything this project needs on a fresh Debian machine and builds it:
# system packages via apt (only those missing), npm dependencies, the TypeScript
# build and the C core; links nstar, sextant and northstar into /usr/local/bin
# (scripts/link-tools.sh). Idempotent: a second run only rebuilds.
set -euo pipefail
cd "$(dirname "$0")/.."

# Build and runtime needs, plus the tools our tests compare against
# (squashfs-tools, veritysetup, the shells whose completion scripts nstar writes, bash's
# completion loader that reads /etc/bash_completion.d) and the
# example/bench inputs (busybox, debootstrap), umoci, skopeo and zstd that make and convert
# the OCI images of the sextant import tests, and runc, the reference the launch and runtime
# benchmarks measure a start against.
PKGS=(gcc make pkg-config libseccomp-dev libc6-dev squashfs-tools cryptsetup-bin umoci skopeo zstd
      debootstrap busybox-static iproute2 attr util-linux zsh fish bash-completion runc)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install: apt packages missing: ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then echo "install: run as root to install them" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The Mender client and artifact tool for the fleet tests (docs/fleet.md), best effort: the
# rest of the project does not need them. Where systemd runs, the Debian package enables and
# starts the mender-client daemon; this is a build machine, not a managed device, so a daemon
# that this install brought is stopped and disabled again (a device enables it: docs/fleet.md).
# Without systemd the package starts nothing.
mender_missing=()
for p in mender-client mender-artifact; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || mender_missing+=("$p")
done
if ((${#mender_missing[@]})) && [ "$(id -u)" -eq 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  mender_install() { apt-get install -y -qq --no-install-recommends "${mender_missing[@]}" >/dev/null 2>&1; }
  if mender_install || { apt-get update -qq && mender_install; }; then
    if [[ " ${mender_missing[*]} " == *" mender-client "* ]] && [ -d /run/systemd/system ]; then
      systemctl disable --now mender-client.service >/dev/null 2>&1 || true
    fi
  else
    echo "install: ${mender_missing[*]} not installed (apt failed): the fleet tests (test/fleet) skip" >&2
  fi
fi

# npm dependencies: only when missing or older than the lock file.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

npm run --silent build
if [ -f native/Makefile ]; then
  make -s -C native
fi
# The static test container used by the integration tests and the examples.
if [ -f examples/test-container/Makefile ]; then
  make -s -C examples/test-container
fi
# Every other example (static C programs, the busybox and Node.js resources, the TS app).
if [ -f examples/Makefile ]; then
  make -s -C examples
fi

# The tools on PATH (symlinks into dist/, so later builds need no new link): as root only,
# a user without root links them elsewhere with scripts/link-tools.sh ~/.local/bin.
if [ "$(id -u)" -eq 0 ]; then
  ./scripts/link-tools.sh
else
  echo "install: not root: nstar, sextant and northstar not linked into /usr/local/bin (scripts/link-tools.sh DIR links them elsewhere)"
fi
