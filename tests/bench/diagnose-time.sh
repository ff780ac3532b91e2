#!/usr/bin/env bash
# Benchmark: time to verdict and the knee's position, the rate search (diagnose's default)
# against seed 000's kind of fixed ramp, in one run on the testbed's network scenario —
# two generators, three Apache Kafka brokers at RF 3, every broker's link capped at
# 100 Mbit/s, 32 KB events — whose ceiling the capacity model predicts from the link
# the network test measured. Each diagnosis is timed from its start to the printed
# verdict (preflight, the network and disk probes, the load, the judgment). Root only.
#
#   bash tests/bench/diagnose-time.sh            # DIAGNOSE_TIME_REPORTS=DIR keeps both reports
#
# Targets: the search under 60 s to a verdict; its plateau (the highest rate reached)
# within 5 % of the ramp's, and no further from the model's ceiling than the ramp's. The
# highest rate of a step that kept up is printed beside it.
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ $(id -u) == 0 ]] || { echo "the testbed needs root" >&2; exit 2; }
source tests/bench/lib.sh
rm -rf "$work"
export PLATEAU_BIN="$plateau"
source tests/testbed/testbed.sh
TESTBED_WARM_SECS=45 testbed_up
for id in 21 22 23; do testbed_limit_link "$id" 100mbit; done
out=$(mktemp -d)
tb_dirs+=("$out")

# Diagnoses with load flags $2… into $out/$1; prints its seconds to a verdict.
timed() {
    local name=$1 started ended
    shift
    kafka_topic_ready "$bootstrap" "bench-$name" 12 3
    started=$(date +%s.%N)
    TESTBED_TOPIC="bench-$name" testbed_diagnose "$out/$name" "$@" --size 32000 --net-time 2 --disk-size 32M \
        -X compression.type=none --json >"$out/$name.json"
    ended=$(date +%s.%N)
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --delete --topic "bench-$name" \
        >/dev/null 2>&1 || true
    python3 -c "print(f'{$ended - $started:.1f}')"
}
search_s=$(timed search --search 50:600)
ramp_s=$(timed ramp --ramp 50:50:4:600)
if [[ -n ${DIAGNOSE_TIME_REPORTS:-} ]]; then
    mkdir -p "$DIAGNOSE_TIME_REPORTS" && cp -r "$out/search" "$out/ramp" "$DIAGNOSE_TIME_REPORTS/"
fi

# One line per diagnosis: seconds, verdict, steps, plateau level, knee (the highest rate
# of a step that kept up), the model's ceiling in msg/s, and the phases' shares.
describe() {
    python3 - "$out/$1/evidence.json" "$2" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
total = float(sys.argv[2])
p = d['plateau']
bytes_per_record = (d['observed_ingress_mbps'] or 0) * 1e6 / p['plateau_msgs_per_sec'] if p['plateau_msgs_per_sec'] else 0
ceiling = (d.get('model') or {}).get('predicted_max_ingress_mbps')
model = ceiling * 1e6 / bytes_per_record if ceiling and bytes_per_record else 0
before = (d['ramp_started_ms'] - d['started_ms']) / 1000
load = (d['ended_ms'] - d['ramp_started_ms']) / 1000
v = d['verdict']
verdict = f"{v['bound']}:{v.get('cause') or '-'}".replace(' ', '_')
print(f"{total} {verdict} {len(d['ramp'])} {p['plateau_msgs_per_sec']:.0f} "
      f"{p['sustained_msgs_per_sec']:.0f} {model:.0f} {before:.1f} {load:.1f}")
PY
}
read -r s_total s_verdict s_steps s_plateau s_sustained s_model s_before s_load <<<"$(describe search "$search_s")"
read -r r_total r_verdict r_steps r_plateau r_sustained r_model r_before r_load <<<"$(describe ramp "$ramp_s")"
printf '%-7s %8s  %-34s %5s  %8s  %9s  %6s  %s\n' "" "verdict" "" "steps" "plateau" "sustained" "model" "phases"
printf '%-7s %6s s  %-34s %5s  %8s  %9s  %6s  %s s before the load, %s s of load\n' \
    search "$s_total" "$s_verdict" "$s_steps" "$s_plateau" "$s_sustained" "$s_model" "$s_before" "$s_load"
printf '%-7s %6s s  %-34s %5s  %8s  %9s  %6s  %s s before the load, %s s of load\n' \
    ramp "$r_total" "$r_verdict" "$r_steps" "$r_plateau" "$r_sustained" "$r_model" "$r_before" "$r_load"
echo "time to verdict, search/ramp: $(ratio "$s_total" "$r_total"); the search's plateau over the ramp's: $(ratio "$s_plateau" "$r_plateau")"
s_off=$(python3 -c "print(f'{abs($s_plateau - $s_model) / $s_model:.3f}' if $s_model else 'nan')")
r_off=$(python3 -c "print(f'{abs($r_plateau - $r_model) / $r_model:.3f}' if $r_model else 'nan')")
echo "distance of the plateau from the model's ceiling (each run's own): search $s_off, ramp $r_off"
target "search: time to verdict, s" "$s_total" "<" 60
target "search plateau / ramp plateau" "abs($s_plateau / $r_plateau - 1)" "<=" 0.05
target "search's distance from the model's ceiling" "$s_off" "<=" "$r_off"
target "search verdict" "'$s_verdict'.startswith('network')" "==" True
finish
