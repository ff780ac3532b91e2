#!/usr/bin/env bash
# Labelled bottleneck scenarios on the testbed: each injects one real bottleneck, runs
# `plateau diagnose --json`, and prints expected vs got. Exit status 1 when a verdict is
# wrong. Root only; every scenario is bounded (≤ 3 minutes) and tears its testbed down.
#
#   bash tests/testbed/scenario.sh network client none     # or: all
set -euo pipefail
cd "$(dirname "$0")/../.."

# The ramp and producer flags every scenario shares: no compression, so that two cores
# can fill a 100 Mbit/s link (seed 000 used lz4 on faster hosts).
common=(--ramp 10000:10000:5:150000 --net-time 3 --disk-size 64M -X compression.type=none)

# Runs one scenario in its own process, so that its testbed's trap tears it down.
run_one() {
    local name=$1 expected out
    out=$(mktemp -d)
    local started=$SECONDS
    (
        source tests/testbed/testbed.sh
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
            none)
                # Ample headroom: the ramp tops out far below every limit.
                expected=none
                testbed_diagnose "$out/report" --ramp 2000:2000:3:8000 --net-time 2 --disk-size 32M --json >"$out/verdict.json"
                ;;
            *)
                echo "unknown scenario '$name' (known: network client none)" >&2
                exit 2
                ;;
        esac
        echo "$expected" >"$out/expected"
    )
    local expected got confidence
    expected=$(cat "$out/expected")
    read -r got confidence plateau_rate <<<"$(python3 -c "
import json
v = json.load(open('$out/verdict.json'))['verdict']
print(v['bound'], f\"{v['confidence']:.2f}\", f\"{v['plateau_msgs_per_sec']:.0f}\")")"
    local verdict=ok
    [[ $got == "$expected" ]] || verdict=WRONG
    printf '%-8s expected %-8s got %-8s confidence %s  plateau %s msg/s  %3d s  %s\n' \
        "$name" "$expected" "$got" "$confidence" "$plateau_rate" $((SECONDS - started)) "$verdict"
    [[ $verdict == ok ]] && rm -rf "$out" || echo "         report kept in $out/report" >&2
    [[ $verdict == ok ]]
}

scenarios=("$@")
[[ ${#scenarios[@]} -gt 0 && ${scenarios[0]} != all ]] || scenarios=(network client none)
failed=0
for name in "${scenarios[@]}"; do
    run_one "$name" || failed=1
done
exit $failed
