#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds, lints, then runs every test with
# Node's test runner. Integration tests need root (loop devices, namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install.sh
echo "lint: eslint"
npx --no-install eslint .
mapfile -t files < <(find dist/test -name '*.test.js' | sort)
if ((${#files[@]} == 0)); then echo "no test files found" >&2; exit 1; fi
exec node --test --test-concurrency=1 "$@" "${files[@]}"
