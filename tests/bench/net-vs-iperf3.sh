#!/usr/bin/env bash
# Benchmark: plateau's network probes against iperf3, measured in the same run.
#   1. loopback TCP throughput, 1 and 4 streams (plateau client -> plateau agent vs
#      iperf3 -c -> iperf3 -s), the median of five alternating 4 s pairs (a noisy machine
#      moves a single pair by ±5 %); target ratio >= 0.97
#   2. the highest loss-free UDP rate of each (1460-byte datagrams); target ratio >= 1.0
#   3. as root: TCP over a 100 Mbit/s tbf link between network namespaces (through a
#      router namespace); target: within 3 % of each other
#
#   bash tests/bench/net-vs-iperf3.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/lib.sh
seconds="${SECONDS_PER_TEST:-4}"



head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$work/token"
agent_port=$(free_port); iperf_port=$(free_port)
"$plateau" agent --listen "127.0.0.1:$agent_port" --data-port 0 --token-file "$work/token" >"$work/agent.log" 2>&1 &
pids+=("$!")
iperf3 -s -B 127.0.0.1 -p "$iperf_port" >"$work/iperf3.log" 2>&1 &
pids+=("$!")
sleep 1

plateau_tcp() { "$plateau" net tcp "http://127.0.0.1:$agent_port" --token-file "$work/token" -t "$seconds" -P "$1" --json |
    json "d['end']['sum_received']['bits_per_second']/1e6"; }
iperf3_tcp() { iperf3 -c 127.0.0.1 -p "$iperf_port" -t "$seconds" -P "$1" -J | json "d['end']['sum_received']['bits_per_second']/1e6"; }

echo "== loopback TCP, ${seconds} s per test (Mbit/s; five pairs, the tools alternating)"
for streams in 1 4; do
    ratios=()
    for pair in 1 2 3 4 5; do
        p=$(plateau_tcp "$streams"); i=$(iperf3_tcp "$streams")
        ratios+=("$(ratio "$p" "$i")")
        printf '%d stream(s), pair %d: plateau %.0f, iperf3 %.0f, ratio %s\n' "$streams" "$pair" "$p" "$i" "${ratios[-1]}"
    done
    median=$(printf '%s\n' "${ratios[@]}" | sort -n | sed -n 3p)
    printf '%d stream(s): median ratio %s (target >= 0.97)\n' "$streams" "$median"
    target "$streams-stream TCP ratio, median of five pairs" "$median" ">=" 0.97
done

# Loss-free: under 0.05 % lost over the test.
plateau_udp_loss() { "$plateau" net udp "http://127.0.0.1:$agent_port" --token-file "$work/token" -t 3 -b "$1" -l 1460 --json |
    json "d['end']['sum']['lost_percent']"; }
iperf3_udp_loss() { iperf3 -c 127.0.0.1 -p "$iperf_port" -u -t 3 -b "$1" -l 1460 -J | json "d['end']['sum']['lost_percent']"; }
highest_loss_free() {
    local tool=$1 best=0
    for rate in 100 250 500 750 1000 1500 2000 3000 4000; do
        loss=$("${tool}_udp_loss" "${rate}M")
        if python3 -c "import sys; sys.exit(0 if $loss < 0.05 else 1)"; then best=$rate; else break; fi
    done
    echo "$best"
}
echo "== loopback UDP, highest loss-free rate with 1460-byte datagrams (Mbit/s; steps 100..4000)"
p=$(highest_loss_free plateau); i=$(highest_loss_free iperf3)
printf 'plateau %s, iperf3 %s, ratio %s (target >= 1.0)\n' "$p" "$i" "$(ratio "$p" "$i")"
target "loss-free UDP ratio" "$(ratio "$p" "$i")" ">=" 1.0

if [ "$(id -u)" != 0 ]; then
    echo "== 100 Mbit/s link: skipped (needs root for network namespaces)"
    finish
fi
echo "== TCP over a 100 Mbit/s tbf link between namespaces (Mbit/s)"
id=$(( $$ % 250 ))
a="plbench-a-$id"; b="plbench-b-$id"; r="plbench-r-$id"
namespaces+=("$a" "$b" "$r")
for ns in "$a" "$b" "$r"; do ip netns del "$ns" 2>/dev/null || true; ip netns add "$ns"; ip -n "$ns" link set lo up; done
for side in a b; do
    ns=$a; net=77; [ "$side" = b ] && { ns=$b; net=78; }
    ip link add "bh$side$id" type veth peer name "br$side$id"
    ip link set "bh$side$id" netns "$ns"; ip link set "br$side$id" netns "$r"
    ip -n "$ns" addr add "10.$net.$id.1/24" dev "bh$side$id"; ip -n "$r" addr add "10.$net.$id.254/24" dev "br$side$id"
    ip -n "$ns" link set "bh$side$id" up; ip -n "$r" link set "br$side$id" up
    ip -n "$ns" route add default via "10.$net.$id.254"
    tc -n "$r" qdisc add dev "br$side$id" root tbf rate 100mbit burst 64kb latency 50ms
done
ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$b" "$plateau" agent --listen "10.78.$id.1:7070" --data-port 7075 --token-file "$work/token" >"$work/agent-b.log" 2>&1 &
pids+=("$!")
ip netns exec "$b" iperf3 -s -B "10.78.$id.1" -p 5201 >"$work/iperf3-b.log" 2>&1 &
pids+=("$!")
sleep 1
p=$(ip netns exec "$a" "$plateau" net tcp "http://10.78.$id.1:7070" --token-file "$work/token" -t 10 -O 1 --json |
    json "d['end']['sum_received']['bits_per_second']/1e6")
i=$(ip netns exec "$a" iperf3 -c "10.78.$id.1" -t 10 -O 1 -J | json "d['end']['sum_received']['bits_per_second']/1e6")
printf 'plateau %.2f, iperf3 %.2f, ratio %s (target within 3 %%)\n' "$p" "$i" "$(ratio "$p" "$i")"
target "100 Mbit/s link, distance from 1" "abs($(ratio "$p" "$i") - 1)" "<=" 0.03
finish
