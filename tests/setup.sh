#!/usr/bin/env bash
# Installs what plateau's tests and benchmarks need on a fresh Debian machine, and
# skips what is already there so that a second run costs nothing.
set -euo pipefail

packages=(prometheus prometheus-node-exporter iperf3 iproute2 curl procps)
missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
