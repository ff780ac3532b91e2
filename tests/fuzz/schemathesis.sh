#!/usr/bin/env bash
# Fuzzes the agent's and the controller's HTTP APIs with schemathesis, from the OpenAPI
# descriptions they serve at /openapi.json: no 5xx, no crash, no response that breaks its
# own schema or status codes, and every operation that declares the bearer token refuses
# a request without it. Both run in a network namespace of their own that has only
# loopback, so whatever addresses and names the fuzzer invents, no packet leaves it
# (names do not resolve, other addresses are unreachable at once).
#
#   bash tests/fuzz/schemathesis.sh            # as root; PLATEAU_BIN and ST may be set
set -euo pipefail
cd "$(dirname "$0")/../.."
bin="${PLATEAU_BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/plateau-target}/debug/plateau}"
st="${ST:-$HOME/.cache/plateau-tools/schemathesis/bin/st}"
examples="${FUZZ_EXAMPLES:-25}"
if [ "$(id -u)" != 0 ]; then
    echo "schemathesis: skipped (needs root for its network namespace)" >&2
    exit 0
fi
[ -x "$st" ] || { echo "schemathesis not found at $st; run tests/setup.sh" >&2; exit 1; }
[ -x "$bin" ] || { echo "plateau not built at $bin" >&2; exit 1; }

netns="pltfuzz$$"
work="$(mktemp -d)"
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    # Whatever still runs in the namespace (a server that outlived its launcher).
    ip netns pids "$netns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    ip netns del "$netns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT INT TERM
ip netns add "$netns"
ip -n "$netns" link set lo up
inns() { ip netns exec "$netns" "$@"; }

echo "fuzz-agent-token-$$" > "$work/token"
echo "fuzz-console-token-$$" > "$work/access"
mkdir -p "$work/disk" "$work/reports"

# Start a server in the namespace and wait for the URL on its first line.
start() {
    local log="$1"; shift
    # Not through the inns function: in the background a function runs in a subshell, whose
    # pid is not the server's, and killing it left the agent and the controller running.
    ip netns exec "$netns" "$@" > "$log" 2>"$log.err" &
    pids+=($!)
    for _ in $(seq 100); do
        url="$(grep -o 'http://[0-9.:]*' "$log" | head -1 || true)"
        [ -n "$url" ] && return 0
        sleep 0.1
    done
    echo "did not start: $*" >&2; cat "$log.err" >&2; return 1
}

# Small caps, so that what the fuzzer asks for is short.
start "$work/agent.log" "$bin" agent --listen 127.0.0.1:0 --data-port 0 --token-file "$work/token" \
    --max-disk-size 8M --max-net-time 2 --max-net-rate 10M
agent="$url"
start "$work/controller.log" "$bin" controller --agents "$agent" --token-file "$work/token" \
    --listen 127.0.0.1:0 --access-token-file "$work/access" --reports "$work/reports"
console="${url%/}"

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,ignored_auth
status=0
for target in "agent $agent $(cat "$work/token")" "controller $console $(cat "$work/access")"; do
    read -r name base token <<< "$target"
    echo "schemathesis: $name at $base"
    # The fuzzer's wrong tokens lock the console's login for a minute; its 429 answers
    # carry Retry-After, which --rate-limit auto respects.
    if ! inns "$st" run "$base/openapi.json" --checks "$checks" -H "Authorization: Bearer $token" \
        --max-examples "$examples" --workers 1 --request-timeout 30 --seed 1 --no-color \
        --phases examples,coverage,fuzzing --generation-database none; then
        status=1
    fi
    if ! inns curl -fsS -m 5 "$base/openapi.json" > /dev/null; then
        echo "schemathesis: the $name stopped answering" >&2
        status=1
    fi
done
for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "schemathesis: a server crashed" >&2; status=1; }
done
exit "$status"
