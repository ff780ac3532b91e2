#!/usr/bin/env bash
# Runs one Apache Kafka broker in the foreground (exec), with the JMX exporter and Jolokia:
#   broker.sh SERVER_PROPERTIES HOST EXPORTER_PORT JOLOKIA_PORT
# The testbed starts it inside a host's namespace and cgroups.
set -euo pipefail
source "$(dirname "$0")/kafka.sh"
kafka_exec_broker "$@"
