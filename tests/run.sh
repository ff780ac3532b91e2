#!/usr/bin/env bash
# Runs plateau's whole test suite: installs what the tests need (tests/setup.sh), then
# `cargo test`. As root, the cgroup and network-namespace tests run too
# (PLATEAU_ROOT_TESTS=1); otherwise they are skipped. Then the package (tests/package.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/plateau-target}"

bash tests/setup.sh
if [ "$(id -u)" = 0 ]; then
    export PLATEAU_ROOT_TESTS="${PLATEAU_ROOT_TESTS:-1}"
else
    echo "not root: skipping the root-only tests (cgroups, network namespaces)" >&2
fi
cargo test --all-targets "$@"
# The agent's and the controller's APIs fuzzed from their OpenAPI descriptions, and the
# labelled bottleneck scenarios on the namespaced testbed's three Apache Kafka brokers
# (root only; one warm testbed, about a minute per scenario).
if [ "${PLATEAU_ROOT_TESTS:-0}" = 1 ] && [ $# = 0 ]; then
    PLATEAU_BIN="$CARGO_TARGET_DIR/debug/plateau" bash tests/fuzz/schemathesis.sh
    PLATEAU_BIN="$CARGO_TARGET_DIR/debug/plateau" TESTBED_BROKER=kafka bash tests/testbed/scenario.sh all
fi
# The package as a user installs it: the static binary's linkage, the unit, the postinst's
# token, the unpacked agent and the built-in rules (after the scenarios: its release build
# would take their CPU).
if [ $# = 0 ]; then
    if [ "$(id -u)" = 0 ] || command -v musl-gcc >/dev/null; then
        bash tests/package.sh
    else
        echo "not root and no musl-gcc: skipping the package's test (apt-get install musl-tools)" >&2
    fi
fi
