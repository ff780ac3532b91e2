#!/usr/bin/env bash
# Benchmark: plateau's produce run against Apache Kafka's own ProducerPerformance
# (`kafka-producer-perf-test.sh`, seed 000's "Approach 1"), in the same run, against the
# same three-broker Apache Kafka 4.1.1 cluster on loopback (RF 3, 12 partitions,
# min.insync.replicas 2), with the same settings: acks=all, idempotence, linger 5 ms,
# 512-byte records, one producing thread, no keys.
#   1. the most records/s each reaches (compression none: the same bytes on the wire);
#      target ratio >= 0.9
#   2. delivery latency p99 at a fixed 5,000 records/s, where neither is saturated; the
#      ratio says whether plateau's latencies can be read like Kafka's own tool's
#      (ProducerPerformance measures from send() to the callback, as plateau does).
# Exits 1 when the throughput ratio misses its target.
#
#   bash tests/bench/produce-vs-producer-performance.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/lib.sh
source tests/kafka/kafka.sh

cluster="$work/kafka"
bash tests/kafka/cluster.sh up "$cluster" bench 12 >/dev/null
trap 'bash tests/kafka/cluster.sh down "$cluster"; cleanup' EXIT INT TERM
source "$cluster/cluster.env"
bootstrap=$BOOTSTRAP
size=512

# The last line of ProducerPerformance: "N records sent, R records/sec (M MB/sec), A ms avg
# latency, X ms max latency, P50 ms 50th, P95 ms 95th, P99 ms 99th, P999 ms 99.9th."
perf_test() {
    kafka_tool org.apache.kafka.tools.ProducerPerformance --topic bench --num-records "$1" --record-size "$size" \
        --throughput "$2" --producer-props "bootstrap.servers=$bootstrap" acks=all enable.idempotence=true \
        compression.type=none linger.ms=5 batch.size=$((64 * 1024)) 2>/dev/null | tail -1
}
field() { python3 -c "import re,sys; line=sys.stdin.read(); print(re.search(r'$1', line).group(1))"; }

# A cold cluster is half as fast (the brokers' JIT): warm it up first.
"$plateau" produce --bootstrap "$bootstrap" --topic bench --rate 1000000 --time 10 --size "$size" --key none \
    --workers 1 --compression none --json >/dev/null

echo "== most records/s: $size-byte records, acks=all, idempotence, linger 5 ms, compression none"
theirs_line=$(perf_test 1500000 -1)
theirs=$(field '([0-9.]+) records/sec' <<<"$theirs_line")
ours=$("$plateau" produce --bootstrap "$bootstrap" --topic bench --rate 1000000 --time 15 --size "$size" --key none \
    --workers 1 --compression none --json | json "round(d['records_per_sec'])")
throughput_ratio=$(ratio "$ours" "$theirs")
echo "plateau $ours records/s, ProducerPerformance ${theirs%.*} records/s: ratio $throughput_ratio (target >= 0.9)"

echo "== delivery latency p99 at 5000 records/s for 20 s"
theirs_line=$(perf_test 100000 5000)
theirs_p99=$(field '([0-9.]+) ms 99th' <<<"$theirs_line")
ours_p99=$("$plateau" produce --bootstrap "$bootstrap" --topic bench --rate 5000 --time 20 --size "$size" --key none \
    --workers 1 --compression none --json | json "d['latency_ms']['p99']")
echo "plateau p99 $ours_p99 ms, ProducerPerformance p99 $theirs_p99 ms: ratio $(ratio "$ours_p99" "$theirs_p99")"

target "records/s ratio" "$throughput_ratio" ">=" 0.9
finish
