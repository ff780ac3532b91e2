#!/usr/bin/env bash
# The demo: seed 000's story on one machine. Installs what it needs (Debian packages,
# Apache Kafka 4.1.1 from Maven Central — no tansu build), builds plateau, brings up the
# testbed — two generator hosts and three Apache Kafka broker hosts (KRaft, RF 3,
# 12 partitions, min.insync.replicas 2) as network namespaces, each with a plateau agent,
# the JMX exporter, Jolokia and a Prometheus beside them — caps every broker's link at
# 100 Mbit/s as the seed's VM links were, and runs `plateau diagnose`. It prints the
# verdict table and the path to findings.md. Root only (namespaces, tc).
# With --consumer, seed 000's whole pipeline: a consumer host whose group writes every
# event to PostgreSQL on a database host of its own, judged with seed 004's 1 s SLA.
#
#   bash tests/demo.sh [--consumer]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/plateau-target}"
started=$SECONDS
pipeline=0
[[ ${1:-} == --consumer ]] && pipeline=1
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
consumers_flags=()
if [[ $pipeline == 1 ]]; then
    testbed_pipeline
    echo "pipeline: a consumer host ${tb_net}.31 (two members) writing to PostgreSQL on ${tb_net}.41; SLA: 1 s mean end-to-end" >&2
    consumers_flags=(--consumer "${consumers[0]}" --consumer-members 2 --database "${databases[0]}"
        --sink "$sink_url" --sla-e2e-ms 1000)
fi
# Each broker receives the records it leads and, as a follower, two copies of the rest:
# with RF 3 on three brokers every broker's link carries the whole producer ingress.
# 32 KB events without compression: on two cores shared by three brokers and two
# generators, Kafka's CPU goes per record and request, not per byte — measured here, the
# brokers took 0.76 of a core for 11.5 MB/s of 32 KB events and 1.34 cores for the same
# bytes in 8 KB events — so large events let the links, not the CPUs, bind first.
testbed_diagnose "$out" --search 50:600 --size 32000 --net-time 3 --disk-size 64M \
    -X compression.type=none "${consumers_flags[@]}"
echo "demo: done in $((SECONDS - started)) s" >&2
