#!/usr/bin/env bash
# Checks the README's promise that `npm ci && npm test` is the whole set-up:
# clones the committed HEAD into a temporary directory and runs .ci/run there
# with an empty npm cache, no pip cache and no project venv, as a new machine
# would (crates still come from crates.io; the Rust toolchain, Node and
# Python are the prerequisites the README lists). Uncommitted changes are not
# part of the check. Removes the clone afterwards unless KEEP=1.
#
#   bash scripts/fresh-machine-check.sh
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
work="$(mktemp -d -t ferrosocket-fresh-XXXXXX)"
cleanup () { [ "${KEEP:-0}" = 1 ] && echo "kept $work" || rm -rf "$work"; }
trap cleanup EXIT

git clone --quiet --no-local "$src" "$work/clone"
mkdir "$work/npm-cache"
cd "$work/clone"
echo "fresh-machine-check: $(git log --oneline -1) in $work/clone"
start=$(date +%s)
npm_config_cache="$work/npm-cache" PIP_NO_CACHE_DIR=1 bash .ci/run
echo "fresh-machine-check: passed in $(( $(date +%s) - start )) s"
