#!/usr/bin/env bash
# Quickstart, first command: install what is missing (apt, npm), build the TypeScript and
# the C core, pack the example containers (signed with a key made on first use) and start
# the runtime in the background with them: console with full permissions on the unix socket
# target/northstar/console.sock (root only), read-only on tcp://localhost:4200.
# The pid file names the runtime process itself (bin/northstar reaches the runtime's private
# mount namespace by exec: one Node process, no waiting parent). Its containers die with it.
# Stop it with: kill $(cat target/northstar/northstar.pid)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
./scripts/install.sh

mkdir -p target/keys target/northstar/{run,data,sockets,repository}
[ -f target/keys/northstar.key ] || node dist/src/cli/sextant.js gen-key -n northstar -o target/keys
node scripts/pack-examples.mjs --key target/keys/northstar.key --out target/northstar/repository

sed "s|@ROOT@|$ROOT|g" examples/northstar.toml > target/northstar/northstar.toml
if [ -f target/northstar/northstar.pid ] && kill -0 "$(cat target/northstar/northstar.pid)" 2>/dev/null; then
  echo "stopping the runtime started earlier"
  kill "$(cat target/northstar/northstar.pid)"
  while kill -0 "$(cat target/northstar/northstar.pid)" 2>/dev/null; do sleep 0.1; done
fi
nohup bin/northstar -c target/northstar/northstar.toml > target/northstar/northstar.log 2>&1 &
echo $! > target/northstar/northstar.pid
for _ in $(seq 100); do
  grep -q "Runtime up and running" target/northstar/northstar.log && break
  if ! kill -0 "$(cat target/northstar/northstar.pid)" 2>/dev/null; then cat target/northstar/northstar.log; exit 1; fi
  sleep 0.1
done
grep -q "Runtime up and running" target/northstar/northstar.log || { cat target/northstar/northstar.log; exit 1; }
echo "northstar is running (pid $(cat target/northstar/northstar.pid)), console on unix://$ROOT/target/northstar/console.sock (full, root only) and tcp://localhost:4200 (read-only)"
echo "log: target/northstar/northstar.log; stop: kill \$(cat target/northstar/northstar.pid)"
