#!/usr/bin/env bash
# Builds plateau's Debian package from the static binary (packaging/build-static.sh): the
# binary, the agent's systemd unit (plateau-agent.service) and its settings
# (/etc/plateau/agent.env, a conffile), the docs and the shipped rules for reference (the
# binary has them built in). The postinst makes the agent's token (/etc/plateau/token,
# mode 0600, never replaced on upgrade) and enables and starts the agent. Prints the
# package's path.
#
#   bash packaging/build-deb.sh [BINARY]   # → $CARGO_TARGET_DIR/packages/plateau_VERSION_amd64.deb
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/plateau-target}"
binary=${1:-$(bash packaging/build-static.sh)}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
out="$CARGO_TARGET_DIR/packages"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
install -D -s -m 0755 "$binary" "$stage/usr/bin/plateau"
install -D -m 0644 packaging/plateau-agent.service "$stage/lib/systemd/system/plateau-agent.service"
install -D -m 0644 packaging/agent.env "$stage/etc/plateau/agent.env"
install -D -m 0644 LICENSE "$stage/usr/share/doc/plateau/copyright"
install -m 0644 README.md docs/agent.md docs/security.md "$stage/usr/share/doc/plateau/"
for rules in rules/*.toml; do
    install -D -m 0644 "$rules" "$stage/usr/share/plateau/rules/$(basename "$rules")"
done
mkdir -p "$stage/DEBIAN" "$out"
cat >"$stage/DEBIAN/control" <<CONTROL
Package: plateau
Version: $version
Architecture: amd64
Maintainer: the plateau authors <plateau@localhost>
Installed-Size: $(du -sk --exclude=DEBIAN "$stage" | cut -f1)
Section: net
Priority: optional
Description: why your Kafka ingestion throughput stopped growing
 plateau measures the network (iperf3-style TCP and UDP tests), each host's CPU and
 disks, and a rate-controlled Kafka produce run side by side, then names the bottleneck
 — the network, a disk, a CPU, the producers, Kafka or the consumers — with its evidence.
 This package holds the static binary and the agent's systemd unit (plateau-agent).
CONTROL
echo /etc/plateau/agent.env >"$stage/DEBIAN/conffiles"
install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$stage/DEBIAN/"
package="$out/plateau_${version}_amd64.deb"
dpkg-deb --root-owner-group -Zxz --build "$stage" "$package" >&2
echo "$package"
