#!/usr/bin/env bash
# Benchmark: what a generator costs while it waits. On the Kafka testbed (three brokers,
# RF 3) with every broker's link capped (BACKPRESSURE_LINK, default 40mbit), one generator
# host (a one-core container) produces seed 000's events padded to 24 KB for 20 s: at a
# target the cluster carries (half its ceiling) and at one far above it (ten times). Each
# run's CPU seconds (user + system, the whole process) per million acknowledged records are
# compared: past the knee a generator should cost no more per record than below it (target
# ratio <= 1.2). The references are pushed against the same capped cluster past its knee
# with the same acks, idempotence and 24 KB records: librdkafka's rdkafka_performance
# (built by produce-vs-rdkafka-performance.sh) and Kafka's ProducerPerformance (target: no
# more CPU per record than either, ratio <= 1.1). Every run is bounded in time; one that
# misses its bound is named and the script goes on. Root only.
#
#   bash tests/bench/generator-backpressure.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/lib.sh
export PLATEAU_BIN="$plateau"
source tests/testbed/testbed.sh
link=${BACKPRESSURE_LINK:-40mbit}
size=24000
secs=20

testbed_up
for id in 1 2 3; do testbed_limit_link "$((20 + id))" "$link"; done
topic=backpressure
kafka_topic_ready "$bootstrap" "$topic" 12 3

# Runs "$@" inside gen1 with a time bound; prints "ACKED CPU_SECONDS" (acked from the
# filter $1 over its stdout), or names the run that missed its bound.
gen1_run() {
    local filter=$1 name=$2
    shift 2
    if ! testbed_exec gen1 timeout --kill-after=5 $((secs + 40)) /usr/bin/time -o "$work/run.time" -f '%e %U %S' "$@" \
        >"$work/run.out" 2>"$work/run.err" </dev/null; then
        echo "$name: did not finish within $((secs + 40)) s or failed: $(tail -3 "$work/run.err")" >&2
        echo "0 0"
        return
    fi
    echo "$($filter) $(awk '{ print $2 + $3 }' "$work/run.time")"
}
plateau_acked() { json 'd["records_acked"]' <"$work/run.out"; }
per_million() { python3 -c "print(f'{$2 / $1 * 1e6:.1f}' if $1 else 'n/a')"; }

# The ceiling: what a far-too-high target delivers.
probe=$(gen1_run plateau_acked "ceiling" "$plateau" produce --bootstrap "$bootstrap" --topic "$topic" \
    --rate 100000 --time 10 --size "$size" -X compression.type=none --json)
ceiling=$(python3 -c "print(max(1, int(${probe% *} / 10)))")
echo "ceiling with $link links: about $ceiling msg/s of $size-byte events"

below=$(gen1_run plateau_acked "plateau below" "$plateau" produce --bootstrap "$bootstrap" --topic "$topic" \
    --rate $((ceiling / 2)) --time "$secs" --size "$size" -X compression.type=none --json)
above=$(gen1_run plateau_acked "plateau above" "$plateau" produce --bootstrap "$bootstrap" --topic "$topic" \
    --rate $((ceiling * 10)) --time "$secs" --size "$size" -X compression.type=none --json)
below_cost=$(per_million ${below% *} ${below#* })
above_cost=$(per_million ${above% *} ${above#* })
echo "plateau below the knee: ${below% *} acked, ${below#* } CPU s → $below_cost CPU s per million"
echo "plateau above the knee: ${above% *} acked, ${above#* } CPU s → $above_cost CPU s per million"
target "plateau's CPU per record above / below the knee" "$above_cost / $below_cost" "<=" 1.2

# librdkafka's rdkafka_performance past the knee: the same record size, acks=all,
# idempotence, linger 5 ms, 32 MB of buffer as plateau's producer.
reference=$(ls "$tools"/rdkafka-sys-*/examples/rdkafka_performance 2>/dev/null | head -1 || true)
if [[ -x $reference ]]; then
    rdkafka_acked() { cat "$work/run.out" "$work/run.err" | grep -o '[0-9]* delivered' | tail -1 | grep -o '^[0-9]*' || echo 0; }
    # As many records as the cluster carries in the run's time, offered ten times faster.
    rd=$(gen1_run rdkafka_acked "rdkafka_performance" "$reference" -P -t "$topic" -b "$bootstrap" -s "$size" \
        -r $((ceiling * 10)) -c $((ceiling * secs)) -X acks=all -X enable.idempotence=true -X linger.ms=5 \
        -X queue.buffering.max.kbytes=32768 -X socket.nagle.disable=true -u)
    rd_cost=$(per_million ${rd% *} ${rd#* })
    echo "rdkafka_performance above the knee: ${rd% *} acked, ${rd#* } CPU s → $rd_cost CPU s per million"
    target "plateau / rdkafka_performance CPU per record above the knee" "$above_cost / $rd_cost" "<=" 1.1
else
    echo "rdkafka_performance not built (bash tests/bench/produce-vs-rdkafka-performance.sh builds it): skipped" >&2
fi

# Kafka's ProducerPerformance past the knee, 32 MB buffer.memory (its default).
if [[ -f $kafka_home/.complete ]]; then
    java_acked() { grep -o '^[0-9]* records sent' "$work/run.out" | tail -1 | grep -o '^[0-9]*' || echo 0; }
    jp=$(gen1_run java_acked "ProducerPerformance" java -Xmx256m -cp "$kafka_home/libs/*" \
        org.apache.kafka.tools.ProducerPerformance --topic "$topic" \
        --num-records $((ceiling * secs)) --record-size "$size" --throughput $((ceiling * 10)) \
        --producer-props "bootstrap.servers=$bootstrap" acks=all enable.idempotence=true linger.ms=5)
    jp_cost=$(per_million ${jp% *} ${jp#* })
    echo "ProducerPerformance above the knee: ${jp% *} acked, ${jp#* } CPU s → $jp_cost CPU s per million"
    target "plateau / ProducerPerformance CPU per record above the knee" "$above_cost / $jp_cost" "<=" 1.1
fi
finish
