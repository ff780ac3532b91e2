#!/usr/bin/env bash
# Runs plateau's whole test suite: installs what the tests need, then `cargo test`.
# As root, the cgroup tests run too (PLATEAU_ROOT_TESTS=1); otherwise they are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/plateau-target}"

if [ "$(id -u)" = 0 ]; then
    bash tests/setup.sh
    export PLATEAU_ROOT_TESTS="${PLATEAU_ROOT_TESTS:-1}"
else
    echo "not root: skipping package installs and the root-only cgroup tests" >&2
fi
cargo test --all-targets "$@"
