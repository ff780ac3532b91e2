#!/usr/bin/env bash
# The testbed: "hosts" as network namespaces on a bridge — generators and brokers — each
# with a plateau agent. With TESTBED_BROKER=kafka (the default), seed 000's cluster: three
# Apache Kafka brokers (KRaft, combined mode, a static quorum of the three), each in its
# host's namespace and in a container (cgroup) of its own, with the JMX exporter and
# Jolokia attached, a real Prometheus scraping them and the agents, and the topic created
# with 12 partitions, RF 3 and min.insync.replicas 2. With TESTBED_BROKER=tansu, one tansu
# broker. Root only. Sourced by the scenario and demo scripts, which call `testbed_up`,
# inject one bottleneck, and run diagnose; the trap set here removes namespaces, the
# bridge, cgroups and processes on exit, failure or Ctrl-C.
#
#   source tests/testbed/testbed.sh; testbed_up; ...; (teardown runs at exit)
#
# With TESTBED_PACKAGE=DIR (a plateau .deb unpacked into DIR), each Kafka broker host is a
# VM as systemd lays it out: the broker in its unit's cgroup `system.slice/kafka.service`,
# and the package's agent run as its unit's ExecStart says, in
# `system.slice/plateau-agent.service`, from the package's environment file (listen
# address and allow-list edited as a user would), with no --watch: it finds the broker.
set -euo pipefail
[[ $(id -u) == 0 ]] || { echo "the testbed needs root (network namespaces, tc, cgroups)" >&2; exit 2; }

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/plateau-target}"
tools="$HOME/.cache/plateau-tools"
plateau="${PLATEAU_BIN:-$CARGO_TARGET_DIR/release/plateau}"
tansu="${PLATEAU_TANSU:-$tools/bin/tansu}"
testbed_broker="${TESTBED_BROKER:-kafka}"
tb_package="${TESTBED_PACKAGE:-}"
# The broker's container inside its host: a cgroup of its own, or its systemd unit's.
tb_broker_unit=broker
[[ -z $tb_package ]] || tb_broker_unit=system.slice/kafka.service
tb_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
source "$tb_repo/tests/kafka/kafka.sh"

tb_tag="pltb$$"
tb_net="10.79.$(( $$ % 200 + 20 ))"
tb_bridge="${tb_tag}br"
tb_dir=$(mktemp -d)
tb_pids=()
tb_namespaces=()
tb_links=()
tb_cgroups=()
tb_dirs=()
generators=()
brokers=()
consumers=()
databases=()
sink_url=""
tb_postgres=""
bootstrap=""
prometheus=""
jolokia=()

testbed_down() {
    set +e
    # PostgreSQL first and by its own hand, so that it leaves no shared memory behind.
    [[ -z $tb_postgres ]] || TB_CWD=/ testbed_exec_in "${tb_tag}-db1/postgres" db1 \
        bash "$tb_repo/tests/postgres/postgres.sh" down "$tb_postgres"
    for pid in "${tb_pids[@]}"; do kill "$pid" 2>/dev/null; done
    sleep 0.5
    for pid in "${tb_pids[@]}"; do kill -9 "$pid" 2>/dev/null; done
    for ns in "${tb_namespaces[@]}"; do
        # Anything still running inside (tansu's children, agents' probes).
        ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null
    done
    # Deleting a link's bridge-side end takes its host-side end with it at once; a deleted
    # namespace's own devices go only when the kernel's cleanup gets to them, which took
    # seconds after three killed JVMs, and the next testbed's links have the same names.
    for link in "${tb_links[@]}"; do ip link del "$link" 2>/dev/null; done
    for ns in "${tb_namespaces[@]}"; do ip netns del "$ns" 2>/dev/null; done
    ip link del "$tb_bridge" 2>/dev/null
    # Reap them: a killed process still counts in its cgroups until it is reaped, and
    # these are this shell's children, which nobody else reaps before it exits.
    for pid in "${tb_pids[@]}"; do wait "$pid" 2>/dev/null; done
    local i cg try
    # Children before their parents; a group still emptying gets a few more tries.
    for ((i = ${#tb_cgroups[@]} - 1; i >= 0; i--)); do
        cg=${tb_cgroups[i]}
        for pid in $(cat "$cg/cgroup.procs" 2>/dev/null); do echo "$pid" >"${cg%%/pltb*}/cgroup.procs" 2>/dev/null; done
        for ((try = 0; try < 20; try++)); do
            rmdir "$cg" 2>/dev/null
            [[ -d $cg ]] || break
            sleep 0.1
        done
    done
    rm -rf "${tb_dirs[@]}" "$tb_dir"
}
trap testbed_down EXIT
trap 'exit 130' INT TERM

# A host: namespace $1 with address .$2 on the bridge; the bridge-side end of its link
# is ${tb_tag}$2, where a tbf caps what flows towards the host.
testbed_host() {
    local ns="${tb_tag}-$1" octet=$2 host_dev="eth0" bridge_dev="${tb_tag}$2"
    ip netns add "$ns"
    tb_namespaces+=("$ns")
    ip -n "$ns" link set lo up
    ip link add "$bridge_dev" type veth peer name "${bridge_dev}h"
    tb_links+=("$bridge_dev")
    ip link set "${bridge_dev}h" netns "$ns"
    ip -n "$ns" link set "${bridge_dev}h" name "$host_dev"
    ip -n "$ns" addr add "$tb_net.$octet/24" dev "$host_dev"
    ip -n "$ns" link set "$host_dev" up
    ip link set "$bridge_dev" master "$tb_bridge" up
    testbed_cgroup "$ns"
}

# Creates cgroup $1 (a path relative to the hierarchies' roots) in the `cpu` and `blkio`
# hierarchies (cgroup v1).
testbed_cgroup() {
    local controller
    for controller in cpu blkio; do
        mkdir "/sys/fs/cgroup/$controller/$1"
        tb_cgroups+=("/sys/fs/cgroup/$controller/$1")
    done
}

# Runs a command inside host $1: in its namespace and in its cgroups (v1 `cpu` and
# `blkio`), so that CPU and disk limits on the host apply to everything it runs.
testbed_exec() {
    local host=$1; shift
    testbed_exec_in "${tb_tag}-$host" "$host" "$@"
}

# Runs a command inside host $2's namespace, in cgroup $1 (relative, as for
# testbed_cgroup), with the working directory $TB_CWD (default: the current one).
testbed_exec_in() {
    local cgroup=$1 host=$2; shift 2
    bash -c 'cd "$1"; echo $$ >"/sys/fs/cgroup/cpu/$2/cgroup.procs"; echo $$ >"/sys/fs/cgroup/blkio/$2/cgroup.procs"
             shift 2; exec "$@"' _ "${TB_CWD:-$PWD}" "$cgroup" nsenter --net="/run/netns/${tb_tag}-$host" "$@"
}

# The cgroup of container $1 (`broker1/broker`: broker1's broker, wherever its unit puts it;
# `gen1`: the host), relative to the hierarchies' roots.
testbed_container() {
    local host=${1%%/*}
    case $1 in
        */broker) echo "${tb_tag}-$host/$tb_broker_unit" ;;
        *) echo "${tb_tag}-$1" ;;
    esac
}

# Starts the unpacked package's agent in host $1 (.$2) as its unit would, in the host's
# `system.slice/plateau-agent.service`; its URL is added to the array named $3.
testbed_agent_service() {
    local host=$1 octet=$2 unit="$tb_package/lib/systemd/system/plateau-agent.service"
    local -n role=$3
    local cgroup="${tb_tag}-$host/system.slice/plateau-agent.service" exec_start env_file="$tb_dir/agent-$host.env"
    testbed_cgroup "$cgroup"
    # The user's edits to /etc/plateau/agent.env: this host's address and the cluster's network.
    sed -e "s|^PLATEAU_LISTEN=.*|PLATEAU_LISTEN=$tb_net.$octet:7070|" -e "s|^PLATEAU_ALLOW=.*|PLATEAU_ALLOW=$tb_net.0/24|" \
        "$tb_package/etc/plateau/agent.env" >"$env_file"
    exec_start=$(sed -n 's|^ExecStart=/usr/bin/plateau|'"$tb_package"'/usr/bin/plateau|p' "$unit")
    [[ -n $exec_start ]] || { echo "no ExecStart in $unit" >&2; return 1; }
    grep -q '^Environment=PLATEAU_TOKEN_FILE=/etc/plateau/token$' "$unit" ||
        { echo "the unit no longer reads /etc/plateau/token" >&2; return 1; }
    # shellcheck disable=SC2086 # ExecStart is its words
    testbed_exec_in "$cgroup" "$host" env -i PATH=/usr/bin:/bin PLATEAU_TOKEN_FILE="$tb_dir/token" \
        bash -c 'set -a; source "$1"; set +a; shift; exec "$@"' _ "$env_file" $exec_start \
        >"$tb_dir/agent-$host.log" 2>&1 &
    tb_pids+=("$!")
    role+=("http://$tb_net.$octet:7070")
}

# Starts a plateau agent in host $1 (.$2) watching cgroup $4 (by default the host's); its
# URL is added to the array named $3 (generators or brokers).
testbed_agent() {
    local host=$1 octet=$2 watch=${4:-/sys/fs/cgroup/cpu/${tb_tag}-$1}
    local -n role=$3
    testbed_exec "$host" "$plateau" agent --listen "$tb_net.$octet:7070" --data-port 7075 \
        --token-file "$tb_dir/token" --allow "$tb_net.0/24" --watch "$watch" \
        >"$tb_dir/agent-$host.log" 2>&1 &
    tb_pids+=("$!")
    role+=("http://$tb_net.$octet:7070")
}

wait_for_tcp() {
    for _ in $(seq 150); do
        (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null && return 0
        sleep 0.2
    done
    echo "nothing listened on $1:$2 within 30 s" >&2
    return 1
}

# Two generators and the brokers on a bridge.
testbed_up() {
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$tb_dir/token"
    chmod 600 "$tb_dir/token"
    ip link add "$tb_bridge" type bridge
    ip addr add "$tb_net.1/24" dev "$tb_bridge"
    ip link set "$tb_bridge" up
    testbed_host gen1 11
    testbed_host gen2 12
    # Each generator host is a one-vCPU VM: its CPU is read from its own cgroup, not from
    # the machine all the testbed's hosts share.
    testbed_limit_cpu gen1 1
    testbed_limit_cpu gen2 1
    testbed_agent gen1 11 generators
    testbed_agent gen2 12 generators
    case $testbed_broker in
        kafka) testbed_kafka ;;
        tansu) testbed_tansu ;;
        *) echo "TESTBED_BROKER must be kafka or tansu, not '$testbed_broker'" >&2; return 2 ;;
    esac
}

# One tansu broker (memory storage unless TESTBED_STORAGE says otherwise) at .21.
testbed_tansu() {
    testbed_host broker1 21
    # The broker process runs in a container of its own inside its host (as Kafka in a
    # pod or a systemd slice); the host's agent watches that container.
    local broker_cgroup="${tb_tag}-broker1/broker"
    testbed_cgroup "$broker_cgroup"
    testbed_agent broker1 21 brokers "/sys/fs/cgroup/cpu/$broker_cgroup"
    bootstrap="$tb_net.21:9092"
    # The broker's storage directory (sqlite:// paths are relative to it): on the disk, or
    # in memory (tmpfs) with TESTBED_STORAGE_ON=memory.
    local storage_dir="$tb_dir/broker1"
    [[ ${TESTBED_STORAGE_ON:-disk} != memory ]] || storage_dir="/dev/shm/${tb_tag}-broker1"
    mkdir "$storage_dir"
    tb_dirs+=("$storage_dir")
    TB_CWD="$storage_dir" testbed_exec_in "$broker_cgroup" broker1 "$tansu" broker --listener-url "tcp://$bootstrap" \
        --advertised-listener-url "tcp://$bootstrap" --storage-engine "${TESTBED_STORAGE:-memory://tansu/}" \
        >"$tb_dir/tansu.log" 2>&1 &
    tb_pids+=("$!")
    testbed_wait_agents
    wait_for_tcp "$tb_net.21" 9092
}

# Seed 000's cluster: brokers 1-3 at .21-.23, each in the container brokerN/broker of its
# host, the JMX exporter on :7071 (as in probes/seed-openstack.toml) and Jolokia on :8778;
# Prometheus on the bridge at .1.
testbed_kafka() {
    [[ -f $kafka_home/.complete ]] || bash "$tb_repo/tests/kafka/install.sh"
    local id octet voters="" cluster
    cluster=$(kafka_cluster_id)
    for id in 1 2 3; do voters+="${voters:+,}$id@$tb_net.$((20 + id)):9093"; done
    for id in 1 2 3; do
        octet=$((20 + id))
        testbed_host "broker$id" "$octet"
        [[ -z $tb_package ]] || testbed_cgroup "${tb_tag}-broker$id/system.slice"
        testbed_cgroup "$(testbed_container "broker$id/broker")"
        if [[ -n $tb_package ]]; then
            testbed_agent_service "broker$id" "$octet" brokers
        else
            testbed_agent "broker$id" "$octet" brokers "/sys/fs/cgroup/cpu/$(testbed_container "broker$id/broker")"
        fi
        mkdir -p "$tb_dir/broker$id/logs"
        kafka_broker_config "$id" "$tb_net.$octet" 9092 9093 "$voters" "$tb_dir/broker$id/server.properties" \
            "$tb_dir/broker$id/logs" "${TESTBED_KAFKA_CONFIG:-}"
        kafka_format "$tb_dir/broker$id/server.properties" "$cluster"
        testbed_exec_in "$(testbed_container "broker$id/broker")" "broker$id" bash "$tb_repo/tests/kafka/broker.sh" \
            "$tb_dir/broker$id/server.properties" "$tb_net.$octet" 7071 8778 >"$tb_dir/kafka$id.log" 2>&1 &
        tb_pids+=("$!")
        bootstrap+="${bootstrap:+,}$tb_net.$octet:9092"
        jolokia+=("jolokia+http://$tb_net.$octet:8778/jolokia")
    done
    testbed_wait_agents
    for id in 1 2 3; do wait_for_tcp "$tb_net.$((20 + id))" 9092; done
    # Kafka's tools run from the root namespace, over the bridge.
    kafka_topic_ready "$bootstrap" telemetry 12 3
    testbed_prometheus
    [[ -z $tb_package ]] || testbed_init
    # Brokers just started interpret and compile their hot paths for their first minute or
    # so; measured here, the three brokers took 1.0 core for 200 msg/s of 8 KB events after
    # 15 s of load and 0.4 after 60 s. A cluster in service is warm: the testbed warms it
    # before anything is measured.
    # TESTBED_WARM_SECS (default 20) says for how long.
    "$plateau" produce --bootstrap "$bootstrap" --topic telemetry --rate 500 --time "${TESTBED_WARM_SECS:-20}" \
        --size 16000 --json >"$tb_dir/warm-up.json" 2>&1 ||
        echo "testbed: warming the brokers failed; see $tb_dir/warm-up.json" >&2
}

# Seed 000's stage past Kafka: a consumer host (.31, its agent runs the consumer group) and
# a database host (.41) with PostgreSQL in a container of its own (db1/postgres), which the
# host's agent watches; `sink_url` is the consumers' connection string.
testbed_pipeline() {
    testbed_host cons1 31
    testbed_agent cons1 31 consumers
    testbed_host db1 41
    testbed_cgroup "${tb_tag}-db1/postgres"
    testbed_agent db1 41 databases "/sys/fs/cgroup/cpu/${tb_tag}-db1/postgres"
    # The postgres user must reach its directory: not under the testbed's private one.
    tb_postgres=$(mktemp -d "/var/tmp/${tb_tag}-postgres.XXXX")
    tb_dirs+=("$tb_postgres")
    TB_CWD=/ testbed_exec_in "${tb_tag}-db1/postgres" db1 bash "$tb_repo/tests/postgres/postgres.sh" up \
        "$tb_postgres" 5432 "$tb_net.41" >"$tb_dir/postgres-up.log" 2>&1 ||
        { cat "$tb_dir/postgres-up.log" >&2; return 1; }
    sink_url=$(sed -n 's/^URL=//p' "$tb_postgres/postgres.env")
    local url host
    for url in "${consumers[@]}" "${databases[@]}"; do
        host=${url#http://}
        wait_for_tcp "${host%:*}" "${host#*:}"
    done
}

# Prometheus on the bridge, scraping the brokers' JMX exporters and every agent each second.
testbed_prometheus() {
    local config="$tb_dir/prometheus.yml" url host targets=""
    for id in 1 2 3; do targets+="${targets:+, }'$tb_net.$((20 + id)):7071'"; done
    local agents=""
    for url in "${generators[@]}" "${brokers[@]}"; do
        host=${url#http://}
        agents+="${agents:+, }'$host'"
    done
    cat >"$config" <<YAML
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: kafka
    static_configs:
      - targets: [$targets]
  - job_name: plateau-agents
    static_configs:
      - targets: [$agents]
YAML
    prometheus --config.file="$config" --storage.tsdb.path="$tb_dir/prometheus" \
        --web.listen-address="$tb_net.1:9090" >"$tb_dir/prometheus.log" 2>&1 &
    tb_pids+=("$!")
    prometheus="http://$tb_net.1:9090"
    wait_for_tcp "$tb_net.1" 9090
}

testbed_wait_agents() {
    local url host
    for url in "${generators[@]}" "${brokers[@]}"; do
        host=${url#http://}
        wait_for_tcp "${host%:*}" "${host#*:}"
    done
}

# Caps the link towards host .$1 at rate $2 (e.g. 100mbit), as seed 000's VM links were;
# rate `none` removes the cap.
testbed_limit_link() {
    if [[ $2 == none ]]; then
        tc qdisc del dev "${tb_tag}$1" root 2>/dev/null || true
    else
        tc qdisc replace dev "${tb_tag}$1" root tbf rate "$2" burst 64kb latency 50ms
    fi
}

# Runs diagnose over the testbed with the given extra flags; the report goes to $1. With
# TESTBED_GENERATORS=N only the first N generators produce.
testbed_diagnose() {
    local out=$1; shift
    local args=()
    if [[ -n $tb_package ]]; then
        # Strangers' VMs: the plan `plateau init` wrote, as a user would run it.
        if [[ -n ${TESTBED_GENERATORS:-} && $TESTBED_GENERATORS -lt ${#generators[@]} ]]; then
            for url in "${generators[@]:0:$TESTBED_GENERATORS}"; do args+=(--generator "$url"); done
        fi
        "$plateau" diagnose --plan "$tb_dir/plan.toml" "${args[@]}" --topic "$(testbed_topic)" \
            --token-file "$tb_dir/token" --out "$out" "$@"
        return
    fi
    for url in "${generators[@]:0:${TESTBED_GENERATORS:-${#generators[@]}}}"; do args+=(--generator "$url"); done
    for url in "${brokers[@]}"; do args+=(--broker "$url"); done
    if [[ $testbed_broker == kafka ]]; then
        # The topic exists (12 partitions, RF 3): diagnose reads its layout from the cluster.
        args+=(--prometheus "$prometheus")
        for url in "${jolokia[@]}"; do args+=(--jmx "$url"); done
    else
        args+=(--partitions 12 --replication-factor 1)
    fi
    "$plateau" diagnose "${args[@]}" --bootstrap "$bootstrap" --topic "$(testbed_topic)" --token-file "$tb_dir/token" \
        --out "$out" "$@"
}

# The plan of strangers' VMs (TESTBED_PACKAGE): `plateau init` from one broker's address,
# the generator hosts' agents and the Prometheus, as the README's "On your own cluster"
# says; it finds the broker hosts' agents itself.
testbed_init() {
    local started=$SECONDS
    "$plateau" init --bootstrap "$tb_net.21:9092" --agent "${generators[0]}" --agent "${generators[1]}" \
        --prometheus "$prometheus" --token-file "$tb_dir/token" --out "$tb_dir/plan.toml" >"$tb_dir/init.log" 2>&1 ||
        { cat "$tb_dir/init.log" >&2; echo "testbed: plateau init failed" >&2; return 1; }
    echo "testbed: plateau init wrote the plan in $((SECONDS - started)) s: $(tail -1 "$tb_dir/init.log")" >&2
    [[ -z ${TESTBED_KEEP_PLAN:-} ]] || cp "$tb_dir/plan.toml" "$tb_dir/init.log" "$TESTBED_KEEP_PLAN/"
}

# The topic testbed_diagnose produces to: telemetry, or $TESTBED_TOPIC.
testbed_topic() {
    echo "${TESTBED_TOPIC:-telemetry}"
}

# Gives host $1 (its agent, the producers it starts, tansu on a broker) $2 cores through
# its cgroup's CFS quota; `testbed_limit_cpu broker1/broker 0.1` limits only the broker
# process's container, and `none` removes the quota.
testbed_limit_cpu() {
    local cg="/sys/fs/cgroup/cpu/$(testbed_container "$1")" period=100000
    if [[ $2 == none ]]; then
        echo -1 >"$cg/cpu.cfs_quota_us"
        return
    fi
    echo "$period" >"$cg/cpu.cfs_period_us"
    echo "$(awk "BEGIN { printf \"%d\", $2 * $period }")" >"$cg/cpu.cfs_quota_us"
}

# Limits what cgroup $1 (e.g. broker1/broker: the broker process's container) writes to the
# disk that holds the testbed's directories to $2 bytes/s (blkio.throttle.write_bps_device;
# 0 removes the limit).
testbed_limit_disk() {
    local source parent device
    source=$(findmnt -n -o SOURCE -T "$tb_dir")
    parent=$(lsblk -no PKNAME "$source" 2>/dev/null | head -1)
    device=$(lsblk -dno MAJ:MIN "${parent:+/dev/$parent}${parent:-$source}" | tr -d ' ')
    echo "$device $2" >"/sys/fs/cgroup/blkio/$(testbed_container "$1")/blkio.throttle.write_bps_device"
}
