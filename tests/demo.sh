#!/usr/bin/env bash
# The demo: seed 000's story on one machine. Installs what it needs (Debian packages,
# tansu), builds plateau, brings up the testbed — two generator hosts and a broker host as
# network namespaces, each with a plateau agent, tansu on the broker — caps the broker's
# link at 100 Mbit/s as the seed's VM links were, and runs `plateau diagnose`. It prints
# the verdict table and the path to findings.md. Root only (namespaces, tc).
#
#   bash tests/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/plateau-target}"
bash tests/setup.sh
echo "building plateau (release)…" >&2
cargo build --release --quiet
out="$PWD/plateau-report-demo"
rm -rf "$out"
source tests/testbed/testbed.sh
echo "testbed: generators ${tb_net}.11 and .12, broker ${tb_net}.21 (tansu), link to the broker capped at 100 Mbit/s" >&2
testbed_up
testbed_limit_link 21 100mbit
# No compression, so that two cores can fill the link (seed 000 used lz4 on faster hosts).
testbed_diagnose "$out" --ramp 10000:10000:5:150000 -X compression.type=none
