#!/usr/bin/env bash
# Benchmark: plateau's produce run against librdkafka's own rdkafka_performance, built
# from the examples of the librdkafka source that rdkafka-sys vendors, in the same run
# against the same tansu broker (memory storage, 12 partitions):
#   1. maximum records/s, 256-byte records, acks=all, idempotence, linger 5 ms, batches of
#      10000, one producing thread each; with compression none (the same bytes on the
#      wire) and with lz4 (seed 000's tuning; the reference's fixed payload compresses
#      far better than real events); target ratio >= 0.9
#   2. rate accuracy at 5k, 20k and 50k msg/s over 10 s; target within 2 %
#   3. event generation offline, events/s per core
#   4. maximum records/s against a three-broker Apache Kafka 4.1.1 cluster on loopback
#      (RF 3, 12 partitions), compression none
#
#   bash tests/bench/produce-vs-rdkafka-performance.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/lib.sh

tansu="$tools/bin/tansu"

# rdkafka_performance from the librdkafka that this build vendors (built once).
source_dir=$(cargo metadata --format-version 1 |
    python3 -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"]=="rdkafka-sys"))' |
    xargs dirname)/librdkafka
version=$(basename "$(dirname "$source_dir")")
reference="$tools/$version/examples/rdkafka_performance"
if [ ! -x "$reference" ]; then
    echo "building rdkafka_performance from $source_dir"
    rm -rf "$tools/$version" && mkdir -p "$tools/$version" && cp -r "$source_dir/." "$tools/$version/"
    (cd "$tools/$version" && ./configure --disable-ssl --disable-gssapi --disable-curl --disable-zstd >/dev/null &&
        make -j2 -C src librdkafka.a >/dev/null && make -C examples rdkafka_performance >/dev/null)
fi

port=$(free_port)
"$tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine memory://tansu/ >"$work/tansu.log" 2>&1 &
pids+=("$!")
sleep 2
"$tansu" topic create bench --partitions 12 --broker "tcp://127.0.0.1:$port" >/dev/null
bootstrap="127.0.0.1:$port"

# The most records/s of plateau and of the reference against $1, compression $2, for $3
# records of the reference.
max_rate() {
    local bootstrap=$1 codec=$2 count=$3 ours theirs
    ours=$("$plateau" produce --bootstrap "$bootstrap" --topic bench --rate 5000000 --time 10 --size 256 --key none \
        --workers 1 --compression "$codec" --json | json "round(d['records_per_sec'])")
    theirs=$("$reference" -P -t bench -b "$bootstrap" -s 256 -c "$count" -X acks=all -X enable.idempotence=true \
        -X socket.nagle.disable=true -z "$codec" -X linger.ms=5 -X batch.num.messages=10000 -q 2>&1 | tail -1 |
        grep -o '[0-9]* msgs/s' | grep -o '[0-9]*')
    # lz4 is printed, not judged: the reference's fixed payload compresses far better
    # than real events, so the two do not put the same bytes on the wire.
    printf 'compression %-4s: plateau %s records/s (real JSON events), rdkafka_performance %s (fixed payload), ratio %s%s\n' \
        "$codec" "$ours" "$theirs" "$(python3 -c "print(f'{$ours / $theirs:.2f}')")" \
        "$([ "$codec" = none ] && echo " (target >= 0.9)")"
    [ "$codec" != none ] || target "$4 records/s ratio, compression none" "$(ratio "$ours" "$theirs")" ">=" 0.9
}

echo "== tansu: maximum records/s, 256-byte records, acks=all, idempotence, linger 5 ms, batch 10000"
for codec in none lz4; do
    max_rate "$bootstrap" "$codec" 8000000 tansu
done

echo "== rate accuracy over 10 s"
for rate in 5000 20000 50000; do
    sent=$("$plateau" produce --bootstrap "$bootstrap" --topic bench --rate "$rate" --time 10 --json | json "d['records_sent']")
    error=$(python3 -c "print(f'{100 * ($sent - $rate * 10) / ($rate * 10):+.2f}')")
    printf '%6d msg/s: %d records in 10 s, error %s %% (target within 2 %%)\n' "$rate" "$sent" "$error"
    target "rate error at $rate msg/s, %" "abs($error)" "<=" 2
done

echo "== event generation offline (no sending), 256-byte events"
"$plateau" produce --bootstrap none:0 --topic none --rate 1 --dry-run --time 5 --workers 1 --size 256

echo "== Apache Kafka 4.1.1, three brokers, RF 3: maximum records/s, the same settings"
cluster="$work/kafka"
bash tests/kafka/cluster.sh up "$cluster" bench 12 >/dev/null
trap 'bash tests/kafka/cluster.sh down "$cluster"; cleanup' EXIT INT TERM
source "$cluster/cluster.env"
# A cold cluster is half as fast (the brokers' JIT): warm it up first, then alternate.
"$plateau" produce --bootstrap "$BOOTSTRAP" --topic bench --rate 5000000 --time 10 --size 256 --key none \
    --workers 1 --compression none --json >/dev/null
for pair in 1 2; do
    max_rate "$BOOTSTRAP" none 1500000 "apache kafka (pair $pair)"
done
finish
