#!/usr/bin/env bash
# Running Apache Kafka from the jars tests/kafka/install.sh fetched: a broker's
# server.properties (KRaft, combined broker and controller, a static quorum of voters),
# formatting its log directory, starting it with the JMX exporter and Jolokia attached,
# and Kafka's own command-line tools. Sourced by the testbed and tests/kafka/cluster.sh.
#
# Sizing for two cores shared by three brokers, generators and agents: a 384 MiB heap,
# G1 with one parallel and one concurrent GC thread, two network and four I/O threads
# per broker, one replica fetcher.

kafka_version=4.1.1
kafka_home="${PLATEAU_KAFKA_HOME:-$HOME/.cache/plateau-tools/kafka-$kafka_version}"
kafka_conf="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kafka_jvm_opts=(-Xms384m -Xmx384m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:ParallelGCThreads=1
    -XX:ConcGCThreads=1 -XX:CICompilerCount=2 -Djava.awt.headless=true
    "-Dlog4j2.configurationFile=$kafka_conf/log4j2.properties")

# A random cluster id, as `kafka-storage random-uuid` makes one (16 bytes, base64url, and
# like Kafka's Uuid.randomUuid never beginning with '-': the storage tool's argument parser
# takes `-t -x...` for a missing id and an option, one cluster start in 64).
kafka_cluster_id() {
    local id=-
    while [[ $id == -* ]]; do
        id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    done
    echo "$id"
}

# Writes broker $1's server.properties to $6: node id $1, host $2, client port $3,
# controller port $4, voters $5 (`1@host:port,2@...`), log directory $7, extra lines $8.
kafka_broker_config() {
    local id=$1 host=$2 port=$3 controller_port=$4 voters=$5 file=$6 logs=$7 extra=${8:-}
    cat >"$file" <<PROPERTIES
process.roles=broker,controller
node.id=$id
controller.quorum.voters=$voters
listeners=PLAINTEXT://$host:$port,CONTROLLER://$host:$controller_port
advertised.listeners=PLAINTEXT://$host:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
log.dirs=$logs
num.partitions=12
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.replica.fetchers=1
background.threads=2
log.segment.bytes=134217728
$extra
PROPERTIES
}

# Formats the log directory of the broker configured in $1 for cluster $2.
kafka_format() {
    java -cp "$kafka_home/libs/*" "${kafka_jvm_opts[@]}" kafka.tools.StorageTool format -t "$2" -c "$1" \
        --ignore-formatted >/dev/null
}

# Runs (execs) the broker configured in $1 with the JMX exporter on $2:$3 and Jolokia on
# $2:$4.
kafka_exec_broker() {
    local config=$1 host=$2 exporter_port=$3 jolokia_port=$4
    exec java "${kafka_jvm_opts[@]}" \
        "-javaagent:$kafka_home/agents/jmx_prometheus_javaagent.jar=$host:$exporter_port:$kafka_conf/jmx-exporter.yaml" \
        "-javaagent:$kafka_home/agents/jolokia-agent.jar=port=$jolokia_port,host=$host" \
        -cp "$kafka_home/libs/*" kafka.Kafka "$config"
}

# Runs one of Kafka's command-line tools by class name: kafka_tool CLASS ARGS...
kafka_tool() {
    local class=$1; shift
    java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 "-Dlog4j2.configurationFile=$kafka_conf/log4j2.properties" \
        -cp "$kafka_home/libs/*" "$class" "$@"
}

# Creates topic $2 on bootstrap $1 with $3 partitions and replication factor $4 (and
# min.insync.replicas=2, and any further topic configs NAME=VALUE given after), retrying
# while the brokers register; then waits until every partition has a leader and its full
# ISR. Bounded: 90 s.
kafka_topic_ready() {
    local bootstrap=$1 topic=$2 partitions=$3 rf=$4 deadline=$((SECONDS + 90)) out config configs=()
    shift 4
    for config in "min.insync.replicas=$((rf > 1 ? 2 : 1))" "$@"; do configs+=(--config "$config"); done
    until kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --create --if-not-exists \
        --topic "$topic" --partitions "$partitions" --replication-factor "$rf" "${configs[@]}" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || { echo "could not create topic $topic on $bootstrap within 90 s" >&2; return 1; }
        sleep 1
    done
    while true; do
        out=$(kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --describe --topic "$topic" \
            --under-replicated-partitions 2>&1; kafka_tool org.apache.kafka.tools.TopicCommand \
            --bootstrap-server "$bootstrap" --describe --topic "$topic" --unavailable-partitions 2>&1)
        [[ -z $out ]] && return 0
        ((SECONDS < deadline)) || { echo "topic $topic not fully replicated within 90 s: $out" >&2; return 1; }
        sleep 1
    done
}
