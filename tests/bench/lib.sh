# Shared by the benchmark scripts: `source tests/bench/lib.sh` from the repository root.
# Installs what is missing, builds plateau in release mode, and defines small helpers.
set -euo pipefail
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/plateau-target}"
bash tests/setup.sh
cargo build --release --quiet
plateau="$CARGO_TARGET_DIR/release/plateau"
tools="$HOME/.cache/plateau-tools"

# A free TCP port on 127.0.0.1.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# Evaluates a Python expression over the JSON on stdin, bound to `d`.
json() { python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }
# a / b with three decimals.
ratio() { python3 -c "print(f'{$1 / $2:.3f}' if $2 else 'n/a')"; }

# Targets: `target NAME VALUE OP LIMIT` (OP: >=, <=, <, >) records a figure that misses its
# target; `finish` prints the misses and exits 1 if there were any, so that a person or a
# script running a benchmark learns the answer from its exit status.
missed=()
target() {
    python3 -c "import sys; sys.exit(0 if ($2) $3 ($4) else 1)" 2>/dev/null || missed+=("$1: $2 (target $3 $4)")
}
finish() {
    if ((${#missed[@]})); then
        printf 'missed target: %s\n' "${missed[@]}" >&2
        exit 1
    fi
    echo "all targets met"
}

# A scratch directory, and processes and network namespaces to remove at exit.
work=$(mktemp -d)
pids=()
namespaces=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for ns in "${namespaces[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
