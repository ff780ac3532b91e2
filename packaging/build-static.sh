#!/usr/bin/env bash
# Builds plateau as one static x86_64 binary (musl: librdkafka, OpenSSL and the PostgreSQL
# client inside it), so that it runs on any x86_64 Linux of the last decade, checks that
# it has no dynamic section, and prints its path. Installs the musl target and Debian's
# musl-tools when they are missing (root), and skips what is present.
#
#   bash packaging/build-static.sh        # → $CARGO_TARGET_DIR/x86_64-unknown-linux-musl/release/plateau
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/plateau-target}"
target=x86_64-unknown-linux-musl
if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target" >&2
fi
if ! command -v musl-gcc >/dev/null; then
    if [[ $(id -u) == 0 ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends musl-tools >&2
    else
        echo "musl-gcc is missing: apt-get install musl-tools" >&2
        exit 2
    fi
fi
export CC_x86_64_unknown_linux_musl=musl-gcc
cargo build --release --quiet --target "$target" --bin plateau >&2
binary="$CARGO_TARGET_DIR/$target/release/plateau"
if readelf -d "$binary" 2>/dev/null | grep -q NEEDED; then
    echo "$binary links against shared libraries:" >&2
    readelf -d "$binary" | grep NEEDED >&2
    exit 1
fi
echo "$binary"
