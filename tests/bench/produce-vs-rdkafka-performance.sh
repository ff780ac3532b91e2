#!/usr/bin/env bash
# Benchmark: plateau's produce run against the references, in the same run against the
# same tansu broker (memory storage, 12 partitions), each tool measured three times,
# alternating, medians compared; CPU seconds per million records (user + system, the
# whole process) for each:
#   1. the same bytes on the wire: 256-byte records without keys, compression none,
#      acks=all, idempotence, linger 5 ms, batches of 10000, one producing thread —
#      against librdkafka's own rdkafka_performance, built from the examples of the
#      librdkafka source that rdkafka-sys vendors; target ratio >= 0.95
#   2. seed 000's events and lz4, one producing thread, the same acks, idempotence and
#      linger, against Kafka's own Java producer sending the same events (plateau writes
#      them with --print-events): (a) without keys, against ProducerPerformance's
#      --payload-file; (b) with seed 000's per-device keys (10,000 devices), against the
#      console producer reading the same key and event per line (ProducerPerformance
#      cannot send keys; its rate is the records over its whole run). Target ratio >= 0.9
#   3. rate accuracy at 5k, 20k and 50k msg/s over 10 s; target within 2 %
#   4. event generation offline, events/s per core
#   5. maximum records/s against a three-broker Apache Kafka 4.1.1 cluster on loopback
#      (RF 3, 12 partitions), compression none
#
#   bash tests/bench/produce-vs-rdkafka-performance.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/lib.sh
source tests/kafka/kafka.sh

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

# Runs "$@" and prints "RECORDS_PER_SEC RECORDS CPU_SECONDS": what filter $1 reads from
# the run's output ($work/run.out and run.err), and the user + system CPU seconds of the
# whole process. A run is bounded (RUN_LIMIT seconds, default 120): one that misses its
# bound or fails is named on stderr and prints "0 0 0", and the script goes on.
timed_run() {
    local filter=$1 cpu
    shift
    if ! timeout --kill-after=10 "${RUN_LIMIT:-120}" /usr/bin/time -o "$work/run.time" -f '%e %U %S' "$@" \
        <"${stdin:-/dev/null}" >"$work/run.out" 2>"$work/run.err"; then
        echo "run did not finish within ${RUN_LIMIT:-120} s or failed: ${*:1:3} …: $(tail -2 "$work/run.err")" >&2
        echo "0 0 0"
        return
    fi
    cpu=$(awk '{ print $2 + $3 }' "$work/run.time")
    echo "$($filter) $cpu"
}
# CPU seconds per million records, or n/a without records.
per_million() { python3 -c "print(f'{float($1) / float($2) * 1e6:.2f}' if float($2 or 0) else 'n/a')"; }
plateau_rate() { json "f\"{round(d['records_per_sec'])} {d['records_acked']}\"" <"$work/run.out"; }
# rdkafka_performance's summary: "... N msgs/s ..."; it sends exactly -c records.
rdkafka_rate() {
    echo "$(cat "$work/run.out" "$work/run.err" | grep -o '[0-9]* msgs/s' | tail -1 | grep -o '[0-9]*')" "$reference_count"
}
# The console producer says nothing: all of its input lines over its whole run.
console_rate() {
    echo "$(awk -v n="$(wc -l <"$stdin")" '{ printf "%d", n / $1 }' "$work/run.time")" "$(wc -l <"$stdin")"
}
# ProducerPerformance's last line: "N records sent, R records/sec (…)".
perf_rate() {
    tail -1 "$work/run.out" | python3 -c "import re,sys; m=re.match(r'(\d+) records sent, ([0-9.]+) records/sec', sys.stdin.read()); print(round(float(m.group(2))), m.group(1))"
}

# Compares "$2 …" (plateau's run) against "$4 …" (the reference's) three times each,
# alternating: prints each pair, the medians of records/s and CPU s per million records,
# and the median of the pairs' ratios (each pair ran back to back, so a broker warming up
# or a neighbour's load moves both of a pair), and records target $1 (that ratio >= $3).
compare() {
    local name=$1 goal=$3 reference_filter=$5 pair ours theirs
    local -a ours_rates theirs_rates ours_cpu theirs_cpu ratios
    local -n ours_cmd=$2 theirs_cmd=$4  # the arrays plateau_cmd and reference_cmd
    for pair in 1 2 3; do
        read -r rate records cpu <<<"$(timed_run plateau_rate "${ours_cmd[@]}")"
        ours_rates+=("$rate"); ours_cpu+=("$(per_million "${cpu:-0}" "${records:-0}")")
        read -r rate records cpu <<<"$(timed_run "$reference_filter" "${theirs_cmd[@]}")"
        theirs_rates+=("$rate"); theirs_cpu+=("$(per_million "${cpu:-0}" "${records:-0}")")
        ratios+=("$(ratio "${ours_rates[-1]}" "${theirs_rates[-1]}")")
        printf '  pair %d: plateau %s records/s (%s CPU s per million), reference %s (%s): ratio %s\n' \
            "$pair" "${ours_rates[-1]}" "${ours_cpu[-1]}" "${theirs_rates[-1]}" "${theirs_cpu[-1]}" "${ratios[-1]}"
    done
    median() { printf '%s\n' "$@" | sort -g | sed -n 2p; }
    ours=$(median "${ours_rates[@]}"); theirs=$(median "${theirs_rates[@]}")
    printf '%s: plateau %s records/s, reference %s (medians); ratio %s, the median pair'"'"'s (target >= %s); CPU s per million records: plateau %s, reference %s\n' \
        "$name" "$ours" "$theirs" "$(median "${ratios[@]}")" "$goal" "$(median "${ours_cpu[@]}")" "$(median "${theirs_cpu[@]}")"
    target "$name: records/s ratio" "$(median "${ratios[@]}")" ">=" "$goal"
}

echo "== tansu, the same bytes on the wire: 256-byte records, no key, compression none, acks=all, idempotence, linger 5 ms, batch 10000, one thread"
# Sets plateau_cmd and reference_cmd to the same-bytes runs against bootstrap $1: plateau
# for $2 s, the reference for reference_count records.
same_bytes() {
    plateau_cmd=("$plateau" produce --bootstrap "$1" --topic bench --rate 5000000 --time "$2" --size 256 --key none
        --workers 1 --compression none --json)
    reference_cmd=("$reference" -P -t bench -b "$1" -s 256 -c "$reference_count" -X acks=all -X enable.idempotence=true
        -X socket.nagle.disable=true -z none -X linger.ms=5 -X batch.num.messages=10000 -q)
}
reference_count=8000000
same_bytes "$bootstrap" 10
compare "same bytes (rdkafka_performance)" plateau_cmd 0.95 reference_cmd rdkafka_rate

echo "== tansu, seed 000's events, lz4, acks=all, idempotence, linger 5 ms, one thread"
"$plateau" produce --bootstrap none:0 --topic none --print-events 20000 >"$work/events.jsonl"
java_producer=(java -Xmx512m -XX:+UseSerialGC "-Dlog4j2.configurationFile=$kafka_conf/log4j2.properties"
    -cp "$kafka_home/libs/*")
plateau_cmd=("$plateau" produce --bootstrap "$bootstrap" --topic bench --rate 5000000 --time 10 --workers 1
    --compression lz4 --key none --json)
reference_cmd=("${java_producer[@]}" org.apache.kafka.tools.ProducerPerformance --topic bench --num-records 7000000
    --payload-file "$work/events.jsonl" --throughput -1 --producer-props "bootstrap.servers=$bootstrap" acks=all
    enable.idempotence=true compression.type=lz4 linger.ms=5 batch.size=1048576)
compare "seed events, no keys (ProducerPerformance, the same payloads)" plateau_cmd 0.9 reference_cmd perf_rate

# The same events with their device ids as keys, one "key<TAB>event" per line.
"$plateau" produce --bootstrap none:0 --topic none --print-events 4000000 |
    sed -E 's/^(.*"device_id":"([^"]*)".*)$/\2\t\1/' >"$work/keyed.tsv"
plateau_cmd=("$plateau" produce --bootstrap "$bootstrap" --topic bench --rate 5000000 --time 10 --workers 1
    --compression lz4 --json)
reference_cmd=("${java_producer[@]}" org.apache.kafka.tools.ConsoleProducer --bootstrap-server "$bootstrap" --topic bench
    --property parse.key=true --property "key.separator=$(printf '\t')" --producer-property acks=all
    --producer-property enable.idempotence=true --producer-property compression.type=lz4
    --producer-property linger.ms=5 --producer-property batch.size=1048576)
stdin="$work/keyed.tsv" compare "seed settings, keyed by device (console producer, the same keys and events)" \
    plateau_cmd 0.9 reference_cmd console_rate

echo "== rate accuracy over 10 s"
for rate in 5000 20000 50000; do
    sent=$("$plateau" produce --bootstrap "$bootstrap" --topic bench --rate "$rate" --time 10 --json | json "d['records_sent']")
    error=$(python3 -c "print(f'{100 * ($sent - $rate * 10) / ($rate * 10):+.2f}')")
    printf '%6d msg/s: %d records in 10 s, error %s %% (target within 2 %%)\n' "$rate" "$sent" "$error"
    target "rate error at $rate msg/s, %" "abs($error)" "<=" 2
done

echo "== event generation offline (no sending), 256-byte events"
"$plateau" produce --bootstrap none:0 --topic none --rate 1 --dry-run --time 5 --workers 1 --size 256

# tansu keeps every record in memory: it goes before the brokers need the memory.
kill "${pids[0]}" 2>/dev/null || true
echo "== Apache Kafka 4.1.1, three brokers, RF 3: maximum records/s, the same settings"
cluster="$work/kafka"
bash tests/kafka/cluster.sh up "$cluster" bench 12 >/dev/null
trap 'bash tests/kafka/cluster.sh down "$cluster"; cleanup' EXIT INT TERM
source "$cluster/cluster.env"
# A cold cluster is half as fast (the brokers' JIT): warm it up first, for longer than a
# pair takes.
"$plateau" produce --bootstrap "$BOOTSTRAP" --topic bench --rate 5000000 --time 25 --size 256 --key none \
    --workers 1 --compression none --json >/dev/null
reference_count=1500000
same_bytes "$BOOTSTRAP" 8
compare "apache kafka, same bytes (rdkafka_performance)" plateau_cmd 0.9 reference_cmd rdkafka_rate
finish
