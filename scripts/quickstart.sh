#!/usr/bin/env bash
# Quickstart, first command: install what is missing (apt packages, npm dependencies),
# build the TypeScript and the C core. Starting the runtime with the example
# containers follows once the runtime daemon exists (see README "Status").
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
echo
echo "Built. Try:  npx sextant --help"
if [ -f dist/src/runtime/main.js ]; then
  echo "The runtime daemon is not wired into the Quickstart yet."
fi
