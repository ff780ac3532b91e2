#!/usr/bin/env bash
# A three-broker Apache Kafka cluster on loopback (KRaft, combined mode, RF 3 topics), for
# tests that need a real Kafka but no network namespaces:
#
#   bash tests/kafka/cluster.sh up DIR [TOPIC PARTITIONS]   # starts it; writes DIR/cluster.env
#   bash tests/kafka/cluster.sh down DIR                    # stops it and removes its logs
#
# DIR/cluster.env holds BOOTSTRAP, EXPORTERS (jmx_exporter URLs), JOLOKIA (agent URLs)
# and PIDS. `up` returns once TOPIC (if given) has a leader and a full ISR everywhere.
set -euo pipefail
source "$(dirname "$0")/kafka.sh"
command=${1:?up or down}
dir=${2:?a directory for the cluster}

free_ports() {
    python3 -c "
import socket
socks = [socket.socket() for _ in range($1)]
for s in socks: s.bind(('127.0.0.1', 0))
print(' '.join(str(s.getsockname()[1]) for s in socks))"
}

case $command in
    up)
        [[ -f $kafka_home/.complete ]] || bash "$kafka_conf/install.sh"
        mkdir -p "$dir"
        read -r -a ports <<<"$(free_ports 12)"
        cluster=$(kafka_cluster_id)
        voters="1@127.0.0.1:${ports[1]},2@127.0.0.1:${ports[5]},3@127.0.0.1:${ports[9]}"
        bootstrap="" exporters="" jolokia="" pids=""
        for id in 1 2 3; do
            base=$(((id - 1) * 4))
            port=${ports[base]} controller=${ports[base + 1]} exporter=${ports[base + 2]} agent=${ports[base + 3]}
            mkdir -p "$dir/broker$id/logs"
            kafka_broker_config "$id" 127.0.0.1 "$port" "$controller" "$voters" "$dir/broker$id/server.properties" \
                "$dir/broker$id/logs"
            kafka_format "$dir/broker$id/server.properties" "$cluster"
            (kafka_exec_broker "$dir/broker$id/server.properties" 127.0.0.1 "$exporter" "$agent") \
                >"$dir/broker$id/out.log" 2>&1 &
            pids+="$! "
            bootstrap+="${bootstrap:+,}127.0.0.1:$port"
            exporters+="${exporters:+,}http://127.0.0.1:$exporter/metrics"
            jolokia+="${jolokia:+,}http://127.0.0.1:$agent/jolokia"
        done
        cat >"$dir/cluster.env" <<ENV
BOOTSTRAP=$bootstrap
EXPORTERS=$exporters
JOLOKIA=$jolokia
PIDS="$pids"
ENV
        if [[ -n ${3:-} ]]; then
            kafka_topic_ready "$bootstrap" "$3" "${4:-12}" 3
        fi
        echo "$bootstrap"
        ;;
    down)
        if [[ -f $dir/cluster.env ]]; then
            source "$dir/cluster.env"
            for pid in $PIDS; do kill "$pid" 2>/dev/null || true; done
            for _ in $(seq 50); do
                alive=0
                for pid in $PIDS; do kill -0 "$pid" 2>/dev/null && alive=1; done
                ((alive)) || break
                sleep 0.2
            done
            for pid in $PIDS; do kill -9 "$pid" 2>/dev/null || true; done
        fi
        rm -rf "$dir"
        ;;
    *)
        echo "usage: cluster.sh up|down DIR" >&2
        exit 2
        ;;
esac
