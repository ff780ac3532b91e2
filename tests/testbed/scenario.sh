#!/usr/bin/env bash
# Labelled bottleneck scenarios on the testbed: each injects one real bottleneck, runs
# `plateau diagnose --json`, and prints expected vs got. Exit status 1 when a verdict is
# wrong. Root only; every scenario is bounded (≤ 3 minutes) and tears its testbed down.
#
#   bash tests/testbed/scenario.sh network client none     # or: all
#   SCENARIO_REPORTS=DIR bash tests/testbed/scenario.sh all  # keeps each report in DIR/NAME
set -euo pipefail
cd "$(dirname "$0")/../.."
# The scenarios still run on one tansu broker; issue 15 moves them onto Apache Kafka.
export TESTBED_BROKER="${TESTBED_BROKER:-tansu}"

# The ramp and producer flags every scenario shares: no compression, so that two cores
# can fill a 100 Mbit/s link (seed 000 used lz4 on faster hosts).
common=(--ramp 10000:10000:5:150000 --net-time 3 --disk-size 64M -X compression.type=none)

# One scenario on seed 000's three-broker Apache Kafka cluster (RF 3), in the subshell that
# sourced the testbed: brings it up, injects the fault, diagnoses into $2/report and writes
# the expected verdict to $2/expected.
kafka_scenario() {
    local name=$1 out=$2 expected id
    case $name in
        disk)
            # Kafka writes through the page cache; with a flush after every message its log
            # appends wait for the disk, which the brokers' containers reach through a
            # 2 MiB/s write limit.
            export TESTBED_KAFKA_CONFIG="log.flush.interval.messages=1"
            ;;
    esac
    testbed_up
    case $name in
        network)
            # Seed 000: every broker's link capped at 100 Mbit/s; with RF 3 the followers'
            # copies fill them (32 KB events, so that the links bind before two cores do).
            expected=network
            for id in 21 22 23; do testbed_limit_link "$id" 100mbit; done
            testbed_diagnose "$out/report" --ramp 50:50:4:600 --size 32000 --net-time 2 --disk-size 32M \
                -X compression.type=none --json >"$out/verdict.json"
            ;;
        cpu)
            # The brokers' containers get a tenth of a core each.
            expected=cpu
            for id in 1 2 3; do testbed_limit_cpu "broker$id/broker" 0.1; done
            testbed_diagnose "$out/report" --ramp 1000:1000:4:30000 --net-time 2 --disk-size 32M \
                -X compression.type=none --json >"$out/verdict.json"
            ;;
        client)
            # The generator hosts get a twentieth of a core each.
            expected=client
            testbed_limit_cpu gen1 0.05
            testbed_limit_cpu gen2 0.05
            testbed_diagnose "$out/report" --ramp 1000:1000:4:30000 --net-time 2 --disk-size 32M \
                -X compression.type=none --json >"$out/verdict.json"
            ;;
        disk)
            expected=disk
            for id in 1 2 3; do testbed_limit_disk "broker$id/broker" $((2 * 1024 * 1024)); done
            testbed_diagnose "$out/report" --ramp 100:100:4:2000 --size 4000 --net-time 2 --disk-size 32M \
                -X compression.type=none --json >"$out/verdict.json"
            ;;
        kafka-quota)
            # Kafka's client quotas: a producer byte rate of 256 KiB/s per broker for every
            # client (the default quota); the brokers throttle, everything else has room.
            expected=kafka:quota
            kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$bootstrap" --alter --entity-type clients \
                --entity-default --add-config producer_byte_rate=262144 >/dev/null
            testbed_diagnose "$out/report" --ramp 200:200:3:3000 --size 1000 --net-time 2 --disk-size 32M \
                -X compression.type=none --json >"$out/verdict.json"
            ;;
        none)
            expected=none
            testbed_diagnose "$out/report" --ramp 200:200:3:1000 --net-time 2 --disk-size 32M \
                --json >"$out/verdict.json"
            ;;
        *)
            echo "unknown scenario '$name' on kafka (known: network cpu client disk kafka-quota none)" >&2
            exit 2
            ;;
    esac
    echo "$expected" >"$out/expected"
}

# Runs one scenario in its own process, so that its testbed's trap tears it down.
run_one() {
    local name=$1 expected out
    out=$(mktemp -d)
    local started=$SECONDS
    (
        source tests/testbed/testbed.sh
        if [[ $TESTBED_BROKER == kafka ]]; then
            kafka_scenario "$name" "$out"
            exit
        fi
        case $name in
            disk) export TESTBED_STORAGE=sqlite://tansu.db ;;
            kafka) export TESTBED_STORAGE=sqlite://tansu.db TESTBED_STORAGE_ON=memory ;;
        esac
        testbed_up
        case $name in
            network)
                # Seed 000: the broker's VM link capped at 100 Mbit/s.
                expected=network
                testbed_limit_link 21 100mbit
                testbed_diagnose "$out/report" "${common[@]}" --json >"$out/verdict.json"
                ;;
            client)
                # The generator hosts get a twentieth of a core each: the producers, not the
                # cluster, run out.
                expected=client
                testbed_limit_cpu gen1 0.05
                testbed_limit_cpu gen2 0.05
                testbed_diagnose "$out/report" "${common[@]}" --json >"$out/verdict.json"
                ;;
            cpu)
                # The broker process's container gets a twentieth of a core: the broker runs
                # out of CPU while the link, the disk and the producers have room.
                expected=cpu
                testbed_limit_cpu broker1/broker 0.05
                testbed_diagnose "$out/report" "${common[@]}" --json >"$out/verdict.json"
                ;;
            disk)
                # Seed 004's disk-bound broker: its log (tansu on sqlite, which syncs what it
                # writes) goes through a 2 MiB/s write limit on the broker's container.
                expected=disk
                testbed_limit_disk broker1/broker $((2 * 1024 * 1024))
                testbed_diagnose "$out/report" --ramp 1000:1000:4:12000 --net-time 2 --disk-size 32M \
                    -X compression.type=none --json >"$out/verdict.json"
                ;;
            kafka)
                # The broker software is the limit: tansu on sqlite serializes every append
                # through one writer, here in memory (tmpfs), so no disk is involved and the
                # host's CPU, disk and link keep room while requests queue in the broker.
                expected=kafka
                testbed_diagnose "$out/report" "${common[@]}" --json >"$out/verdict.json"
                ;;
            none)
                # Ample headroom: the ramp tops out far below every limit.
                expected=none
                testbed_diagnose "$out/report" --ramp 2000:2000:3:8000 --net-time 2 --disk-size 32M --json >"$out/verdict.json"
                ;;
            *)
                echo "unknown scenario '$name' (known: network cpu client disk kafka none)" >&2
                exit 2
                ;;
        esac
        echo "$expected" >"$out/expected"
    )
    local expected got cause confidence plateau_rate scores
    expected=$(cat "$out/expected" 2>/dev/null || echo "?")
    read -r got cause confidence plateau_rate scores <<<"$(python3 -c "
import json, sys
try:
    v = json.load(open('$out/verdict.json'))['verdict']
except (OSError, ValueError, KeyError):
    print('error - - - -'); sys.exit()
scores = ','.join(f'{b}={s:g}' for b, s in sorted(v['scores'].items(), key=lambda kv: -kv[1]))
cause = (v.get('cause') or '-').replace(' ', '_')
print(v['bound'], cause, f\"{v['confidence']:.2f}\", f\"{v['plateau_msgs_per_sec']:.0f}\", scores or '-')")"
    cause=${cause//_/ }
    local verdict=ok
    # An expected verdict is a bound, or bound:cause when the cause is part of what is tested.
    if [[ $expected == *:* ]]; then
        [[ $got == "${expected%%:*}" && $cause == "${expected#*:}" ]] || verdict=WRONG
    else
        [[ $got == "$expected" ]] || verdict=WRONG
    fi
    # The testbed's teardown must leave nothing named after it: namespaces, links, cgroups.
    # (Given 2 s: the kernel finishes tearing a namespace's devices down asynchronously.)
    local leftovers try
    for try in 1 2 3 4 5; do
        leftovers=$( (ip netns list | sed 's/^/netns /'; ip -o link show | sed 's/^[0-9]*: /link /';
            ls -d /sys/fs/cgroup/*/pltb$$* /sys/fs/cgroup/*/*/pltb$$* 2>/dev/null | sed 's/^/cgroup /') |
            grep -o "^[a-z]* [^ ]*pltb$$[^ :@]*" | sort -u | tr '\n' ' ' || true)
        [[ -z $leftovers ]] && break
        sleep 0.5
    done
    if [[ -n $leftovers ]]; then
        echo "         teardown left behind: $leftovers" >&2
        verdict=WRONG
    fi
    printf '%-12s expected %-12s got %-8s cause %-22s confidence %s  plateau %6s msg/s  %3d s  %-5s scores %s\n' \
        "$name" "$expected" "$got" "$cause" "$confidence" "$plateau_rate" $((SECONDS - started)) "$verdict" "$scores"
    if [[ -n ${SCENARIO_REPORTS:-} ]]; then
        mkdir -p "$SCENARIO_REPORTS" && rm -rf "${SCENARIO_REPORTS:?}/$name" && cp -r "$out/report" "$SCENARIO_REPORTS/$name"
    fi
    [[ $verdict == ok ]] && rm -rf "$out" || echo "         report kept in $out/report" >&2
    [[ $verdict == ok ]]
}

scenarios=("$@")
if [[ ${#scenarios[@]} -eq 0 || ${scenarios[0]} == all ]]; then
    case $TESTBED_BROKER in
        kafka) scenarios=(network cpu client disk kafka-quota none) ;;
        *) scenarios=(network cpu client disk kafka none) ;;
    esac
fi
failed=0
for name in "${scenarios[@]}"; do
    run_one "$name" || failed=1
done
exit $failed
