#!/usr/bin/env bash
# Benchmark: plateau's agent against Debian's prometheus-node-exporter, side by side on
# this host, both scraped by one real Prometheus every second (the agent also samples
# every second). Prints each process's CPU seconds and peak RSS, and the ratios.
# Targets: the agent uses no more CPU than node exporter, and stays under 30 MB RSS.
#
#   bash tests/bench/agent-vs-node-exporter.sh            # 60 s
#   DURATION=20 bash tests/bench/agent-vs-node-exporter.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/lib.sh
duration="${DURATION:-60}"


agent_port=$(free_port); node_port=$(free_port); prom_port=$(free_port)

"$plateau" agent --listen "127.0.0.1:$agent_port" --no-auth --interval 1s >"$work/agent.log" 2>&1 &
agent_pid=$!; pids+=("$agent_pid")
prometheus-node-exporter --web.listen-address="127.0.0.1:$node_port" >"$work/node.log" 2>&1 &
node_pid=$!; pids+=("$node_pid")
cat >"$work/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 900ms
scrape_configs:
  - job_name: plateau
    static_configs: [{targets: ['127.0.0.1:$agent_port']}]
  - job_name: node
    static_configs: [{targets: ['127.0.0.1:$node_port']}]
YAML
prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="$work/data" \
    --web.listen-address="127.0.0.1:$prom_port" >"$work/prometheus.log" 2>&1 &
pids+=("$!")

cpu_seconds() { awk -v tck="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); printf "%.2f", ($12 + $13) / tck }' "/proc/$1/stat"; }
peak_rss_mb() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

sleep 2
agent_cpu0=$(cpu_seconds "$agent_pid"); node_cpu0=$(cpu_seconds "$node_pid")
echo "running both for ${duration} s at a 1 s scrape/sample interval..."
sleep "$duration"
agent_cpu=$(awk -v a="$(cpu_seconds "$agent_pid")" -v b="$agent_cpu0" 'BEGIN { printf "%.2f", a - b }')
node_cpu=$(awk -v a="$(cpu_seconds "$node_pid")" -v b="$node_cpu0" 'BEGIN { printf "%.2f", a - b }')
agent_rss=$(peak_rss_mb "$agent_pid"); node_rss=$(peak_rss_mb "$node_pid")
scrapes=$(curl -s "http://127.0.0.1:$prom_port/api/v1/query" --data-urlencode 'query=up' |
    python3 -c 'import json,sys; print(", ".join(r["metric"]["job"]+"="+r["value"][1] for r in json.load(sys.stdin)["data"]["result"]))')

printf '\n%-26s %12s %14s\n' "process" "CPU seconds" "peak RSS MB"
printf '%-26s %12s %14s\n' "plateau agent" "$agent_cpu" "$agent_rss"
printf '%-26s %12s %14s\n' "prometheus-node-exporter" "$node_cpu" "$node_rss"
awk -v a="$agent_cpu" -v n="$node_cpu" -v ar="$agent_rss" -v nr="$node_rss" 'BEGIN {
    printf "\nCPU ratio agent/node_exporter: %.2f (target <= 1.00)\n", (n > 0 ? a / n : 0)
    printf "RSS ratio agent/node_exporter: %.2f; agent peak RSS %.1f MB (target < 30 MB)\n", (nr > 0 ? ar / nr : 0), ar
}'
echo "targets up: $scrapes"
target "CPU ratio agent/node_exporter" "$(ratio "$agent_cpu" "$node_cpu")" "<=" 1.0
target "agent peak RSS MB" "$agent_rss" "<" 30
finish
