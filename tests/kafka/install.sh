#!/usr/bin/env bash
# Installs Apache Kafka 4.1.1 (the version of seed 000) from Maven Central with Maven —
# the broker, its tools and a log4j2 binding (tests/kafka/pom.xml) — plus the Prometheus
# JMX exporter and the Jolokia JVM agents, into ~/.cache/plateau-tools/kafka-VERSION.
# Skips what is present; nothing is downloaded from anywhere but Maven Central.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
version=4.1.1
jmx_exporter=1.0.1
jolokia=2.2.9
home="$HOME/.cache/plateau-tools/kafka-$version"
if [ -f "$home/.complete" ]; then
    exit 0
fi
command -v mvn >/dev/null || { echo "Maven (mvn) is needed to fetch Apache Kafka from Maven Central" >&2; exit 1; }
command -v java >/dev/null || { echo "Java 17 is needed to run Apache Kafka" >&2; exit 1; }
echo "installing Apache Kafka $version, jmx_prometheus_javaagent $jmx_exporter and jolokia-agent-jvm $jolokia from Maven Central into $home"
rm -rf "$home"
mkdir -p "$home/libs" "$home/agents"
fetch() {
    if ! "$@" > "$home/mvn.log" 2>&1; then
        echo "could not fetch from Maven Central (is it reachable?): $*" >&2
        grep -m3 ERROR "$home/mvn.log" >&2 || tail -5 "$home/mvn.log" >&2
        exit 1
    fi
}
fetch mvn -q -B -f "$here/pom.xml" dependency:copy-dependencies -DoutputDirectory="$home/libs" -Dkafka.version="$version"
fetch mvn -q -B dependency:copy -Dartifact="io.prometheus.jmx:jmx_prometheus_javaagent:$jmx_exporter" \
    -DoutputDirectory="$home/agents"
fetch mvn -q -B dependency:copy -Dartifact="org.jolokia:jolokia-agent-jvm:$jolokia:jar:javaagent" \
    -DoutputDirectory="$home/agents"
ln -sf "jmx_prometheus_javaagent-$jmx_exporter.jar" "$home/agents/jmx_prometheus_javaagent.jar"
ln -sf "jolokia-agent-jvm-$jolokia-javaagent.jar" "$home/agents/jolokia-agent.jar"
touch "$home/.complete"
