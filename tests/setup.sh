#!/usr/bin/env bash
# Installs what plateau's build, tests and benchmarks need on a fresh Debian machine,
# and skips what is already there so that a second run costs nothing:
#   - Debian packages (as root): Prometheus, node exporter, iperf3, iproute2, PostgreSQL
#     (seed 000's sink, started by the tests themselves: tests/postgres/postgres.sh), Chromium and
#     ChromeDriver (the controller's browser test), and the headers rdkafka's vendored
#     librdkafka builds against (SSL, zstd, zlib);
#   - tansu, the Kafka-protocol broker the tests run against, built once with cargo
#     into ~/.cache/plateau-tools (15-30 minutes the first time on 2 cores);
#   - schemathesis (PyPI), which fuzzes the agent's and the controller's APIs, in a
#     virtual environment under ~/.cache/plateau-tools;
#   - Apache Kafka 4.1.1 and the JMX exporter and Jolokia agents, from Maven Central
#     (tests/kafka/install.sh).
# `bash tests/setup.sh demo` installs only what the demo needs (no tansu, no schemathesis).
# `bash tests/setup.sh background` builds tansu in the background (CI: the lints and the
# test build run meanwhile); any later call waits for that build to end.
set -euo pipefail
only=${1:-all}

packages=(prometheus prometheus-node-exporter iperf3 iproute2 curl procps python3 python3-venv
    pkg-config libssl-dev zlib1g-dev libzstd-dev make g++ chromium chromium-driver maven openjdk-17-jre-headless
    postgresql musl-tools systemd binutils)
if [ "$(id -u)" = 0 ]; then
    missing=()
    for package in "${packages[@]}"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
    done
    if ((${#missing[@]})); then
        echo "installing: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
    fi
else
    echo "not root: not installing Debian packages (${packages[*]})" >&2
fi

tools="$HOME/.cache/plateau-tools"
if [ "$only" = demo ]; then
    bash "$(dirname "$0")/kafka/install.sh"
    exit 0
fi
# The tests use tansu's memory and sqlite storage (dynostore, libsql).
build_tansu=(env CARGO_TARGET_DIR="$tools/target" cargo install tansu --locked --features dynostore,libsql --root "$tools")
building="$tools/tansu-build.pid"
if [ -f "$building" ]; then
    pid=$(cat "$building")
    if kill -0 "$pid" 2>/dev/null; then
        echo "waiting for the background tansu build (pid $pid, log $tools/tansu-build.log)"
        while kill -0 "$pid" 2>/dev/null; do sleep 5; done
    fi
    rm -f "$building"
    if [ ! -x "$tools/bin/tansu" ]; then
        echo "the background tansu build failed:" >&2
        tail -n 30 "$tools/tansu-build.log" >&2
        exit 1
    fi
fi
if [ ! -x "$tools/bin/tansu" ]; then
    mkdir -p "$tools"
    if [ "$only" = background ]; then
        echo "building tansu in the background into $tools (log: $tools/tansu-build.log)"
        nohup "${build_tansu[@]}" >"$tools/tansu-build.log" 2>&1 &
        echo $! >"$building"
    else
        echo "installing tansu into $tools (15-30 minutes the first time)"
        "${build_tansu[@]}"
    fi
fi

bash "$(dirname "$0")/kafka/install.sh"

schemathesis="$tools/schemathesis"
if [ ! -x "$schemathesis/bin/st" ]; then
    echo "installing schemathesis into $schemathesis"
    python3 -m venv "$schemathesis"
    "$schemathesis/bin/pip" install --quiet --disable-pip-version-check "schemathesis==4.32.5"
fi
