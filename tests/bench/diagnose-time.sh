#!/usr/bin/env bash
# Benchmark: time to verdict of a default `plateau diagnose` on a two-host setup — a
# generator host and a broker host, each with its agent, and a tansu broker — all on
# loopback here. Seed 000's ramp (20,000 msg/s in steps every 10 s to 200,000), the
# default network test (3 s) and disk probe (64 MiB). Target: under 180 s to a verdict,
# the ramp taking most of it. Prints the phases' shares and the ratio to the target.
#
#   bash tests/bench/diagnose-time.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/lib.sh
tansu="$tools/bin/tansu"

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token"
kafka_port=$(free_port)
"$tansu" broker --listener-url "tcp://127.0.0.1:$kafka_port" --advertised-listener-url "tcp://127.0.0.1:$kafka_port" \
    --storage-engine memory://tansu/ >"$work/tansu.log" 2>&1 &
pids+=("$!")
agents=()
for role in generator broker; do
    port=$(free_port)
    "$plateau" agent --listen "127.0.0.1:$port" --data-port 0 --token-file "$work/token" >"$work/agent-$role.log" 2>&1 &
    pids+=("$!")
    agents+=("http://127.0.0.1:$port")
done
for _ in $(seq 100); do
    curl -sf "${agents[1]}/status" >/dev/null 2>&1 && (exec 3<>"/dev/tcp/127.0.0.1/$kafka_port") 2>/dev/null && break
    sleep 0.2
done

started=$(date +%s.%N)
"$plateau" diagnose --generator "${agents[0]}" --broker "${agents[1]}" --bootstrap "127.0.0.1:$kafka_port" \
    --topic telemetry --partitions 12 --token-file "$work/token" --out "$work/report" --json >"$work/verdict.json"
ended=$(date +%s.%N)
total=$(python3 -c "print(f'{$ended - $started:.1f}')")
read -r ramp_s bound plateau_rate <<<"$(python3 -c "
import json
d = json.load(open('$work/report/evidence.json'))
print(f\"{(d['ended_ms'] - d['ramp_started_ms']) / 1000:.1f}\", d['verdict']['bound'], f\"{d['plateau']['plateau_msgs_per_sec']:.0f}\")")"
echo "time to verdict: $total s (ramp $ramp_s s, share $(ratio "$ramp_s" "$total")); verdict $bound at $plateau_rate msg/s"
echo "ratio to the 180 s target: $(ratio "$total" 180) (target < 1.0)"
target "time to verdict, s" "$total" "<" 180
finish
