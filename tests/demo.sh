#!/usr/bin/env bash
# The demo: seed 000's story on one machine. Installs what it needs (Debian packages,
# Apache Kafka 4.1.1 from Maven Central — no tansu build), builds plateau, brings up the
# testbed — two generator hosts and three Apache Kafka broker hosts (KRaft, RF 3,
# 12 partitions, min.insync.replicas 2) as network namespaces, each with a plateau agent,
# the JMX exporter, Jolokia and a Prometheus beside them — caps every broker's link at
# 100 Mbit/s as the seed's VM links were, and runs `plateau diagnose`. It prints the
# verdict table and the path to findings.md. Root only (namespaces, tc).
#
#   bash tests/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/plateau-target}"
started=$SECONDS
bash tests/setup.sh demo
echo "building plateau (release)…" >&2
cargo build --release --quiet
out="$PWD/plateau-report-demo"
rm -rf "$out"
export TESTBED_BROKER=kafka
source tests/testbed/testbed.sh
echo "testbed: generators ${tb_net}.11 and .12, Apache Kafka brokers ${tb_net}.21-.23 (RF 3), links to the brokers capped at 100 Mbit/s" >&2
testbed_up
for octet in 21 22 23; do testbed_limit_link "$octet" 100mbit; done
# Each broker receives the records it leads and, as a follower, two copies of the rest:
# with RF 3 on three brokers every broker's link carries the whole producer ingress.
# 8 KB events without compression, so that two cores (shared by three brokers and two
# generators) can fill the links: Kafka's and the generators' CPU goes per record and batch.
testbed_diagnose "$out" --ramp 200:200:5:2400 --size 8000 --net-time 3 --disk-size 64M \
    -X compression.type=none
echo "demo: done in $((SECONDS - started)) s" >&2
