#!/usr/bin/env bash
# Seed 002's full grid on the testbed: 1 KB, 10 KB and 100 KB events on 1, 3, 6 and 12
# partitions (RF 3) against the three Apache Kafka brokers, two generator hosts and a
# consumer host, every host with its agent, Prometheus and the brokers' JMX beside them.
# Brings the testbed up (and warms it), runs `plateau sweep` with the grid of
# probes/sweep-seed-002.toml over the testbed's hosts, and tears it down. Root only.
#
#   bash tests/testbed/sweep.sh [OUT_DIR] [plateau sweep flags...]   # default: ./plateau-sweep-testbed
#   PLATEAU_BIN=path/to/plateau bash tests/testbed/sweep.sh ...      # without the release build
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(realpath -m "${1:-plateau-sweep-testbed}")
shift || true
export TESTBED_BROKER=kafka
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/plateau-target}"
if [[ -z ${PLATEAU_BIN:-} ]]; then
    echo "building plateau (release)…" >&2
    cargo build --release --quiet
fi
source tests/testbed/testbed.sh
started=$SECONDS
TESTBED_WARM_SECS=45 testbed_up
testbed_pipeline
echo "testbed up and warm in $((SECONDS - started)) s" >&2
args=()
for url in "${generators[@]}"; do args+=(--generator "$url"); done
for url in "${brokers[@]}"; do args+=(--broker "$url"); done
for url in "${jolokia[@]}"; do args+=(--jmx "$url"); done
# The seed plan's grid and producer settings; the hosts, the cluster and a search range for
# two shared cores (a 100 KB cell's knee is a few hundred msg/s) from the testbed.
"$plateau" sweep --plan probes/sweep-seed-002.toml "${args[@]}" --consumer "${consumers[0]}" \
    --bootstrap "$bootstrap" --prometheus "$prometheus" --topic bench --search 250:100000:3 \
    --disk-size 32M --disk-path /var/tmp --net-time 2 --catch-up-secs 5 -X compression.type=none \
    --token-file "$tb_dir/token" --out "$out" "$@"
echo "sweep: done in $((SECONDS - started)) s; report in $out" >&2
