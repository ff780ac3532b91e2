#!/usr/bin/env bash
# The package as a user meets it: builds the static binary and the .deb
# (packaging/build-deb.sh), checks the binary's linkage (no shared library at all) and the
# agent's unit (systemd-analyze verify), unpacks the package into a scratch root and runs
# what it installed as its unit would — the agent from the environment file, reading the
# token the postinst makes — and the built-in rules from a directory without any. As root,
# the package meets the Kafka testbed as strangers' VMs: each broker host's agent run as its
# unit says, beside a broker in its own systemd unit, with no --watch, and the static
# binary diagnosing the `cpu` and `network` scenarios (tests/testbed/testbed.sh,
# TESTBED_PACKAGE).
#
#   bash tests/package.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/plateau-target}"
started=$SECONDS
package=$(bash packaging/build-deb.sh)
root=$(mktemp -d)
agent_pid=""
cleanup() {
    [[ -n $agent_pid ]] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
    rm -rf "$root"
}
trap cleanup EXIT
fail() { echo "package: $*" >&2; exit 1; }

dpkg-deb -x "$package" "$root"
dpkg-deb -e "$package" "$root/DEBIAN"
binary="$root/usr/bin/plateau"
echo "package: $(basename "$package"), $(du -k "$package" | cut -f1) KiB; binary $(du -k "$binary" | cut -f1) KiB"
for path in lib/systemd/system/plateau-agent.service etc/plateau/agent.env usr/share/doc/plateau/copyright; do
    [[ -f $root/$path ]] || fail "the package lacks /$path"
done
grep -qx /etc/plateau/agent.env "$root/DEBIAN/conffiles" || fail "agent.env is not a conffile"
if readelf -d "$binary" | grep -q NEEDED; then fail "the binary needs shared libraries: $(readelf -d "$binary" | grep NEEDED)"; fi
if readelf -l "$binary" | grep -q INTERP; then fail "the binary asks for a dynamic loader"; fi

# The unit, as systemd reads it (with the binary where ExecStart says).
if command -v systemd-analyze >/dev/null; then
    unit_dir=$(mktemp -d)
    sed "s|/usr/bin/plateau|$binary|" "$root/lib/systemd/system/plateau-agent.service" >"$unit_dir/plateau-agent.service"
    # It exits 0 on settings it ignores: any word from it is a fault in the unit.
    verdict=$(systemd-analyze verify "$unit_dir/plateau-agent.service" 2>&1) || fail "systemd-analyze verify refused the unit: $verdict"
    [[ -z $verdict ]] || fail "systemd-analyze verify: $verdict"
    rm -rf "$unit_dir"
else
    fail "systemd-analyze is missing: apt-get install systemd (tests/setup.sh does)"
fi

# The postinst's token: made once, mode 0600, kept on upgrade.
etc="$root/etc/plateau"
sed "s|/etc/plateau|$etc|g" "$root/DEBIAN/postinst" >"$root/postinst"
sh "$root/postinst" configure
[[ $(stat -c %a "$etc/token") == 600 && -s $etc/token ]] || fail "the postinst made no 0600 token"
first=$(cat "$etc/token")
sh "$root/postinst" configure
[[ $(cat "$etc/token") == "$first" ]] || fail "an upgrade replaced the token"

# The agent as ExecStart runs it: settings from agent.env, the token from the file.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
data_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
(
    set -a
    # shellcheck disable=SC1091
    source "$etc/agent.env"
    set +a
    PLATEAU_LISTEN="127.0.0.1:$port" PLATEAU_DATA_PORT=$data_port PLATEAU_TOKEN_FILE="$etc/token" \
        exec "$binary" agent
) >"$root/agent.log" 2>&1 &
agent_pid=$!
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/status" >/dev/null && break; sleep 0.1; done
curl -sf "http://127.0.0.1:$port/status" | grep -q '"allow":\["127.0.0.0/8"\]' || fail "the agent did not take agent.env's allow-list: $(cat "$root/agent.log")"
[[ $(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $first" "http://127.0.0.1:$port/auth/check") == 200 ]] ||
    fail "the agent refused the postinst's token"
[[ $(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer wrong" "http://127.0.0.1:$port/auth/check") == 401 ]] ||
    fail "the agent took a wrong token"

# The rules built in: checked from a directory without rules/.
(cd "$root" && "$binary" rules check) | grep -q "built-in rules: .* no errors" || fail "the built-in rules do not check"
# Strangers' VMs: the scenarios' verdicts, and what each broker agent said it read.
if [[ $(id -u) == 0 && ${PACKAGE_SCENARIOS:-1} == 1 ]]; then
    reports="$root/reports"
    SCENARIO_REPORTS=$reports TESTBED_PACKAGE=$root TESTBED_KEEP_PLAN=$root PLATEAU_BIN=$binary \
        bash tests/testbed/scenario.sh cpu network || fail "the packaged agents' scenarios failed (above)"
    # The plan `plateau init` wrote: every broker matched to its host's agent, both generators.
    python3 - "$root/plan.toml" <<'PY' || fail "plateau init's plan is not the testbed's"
import sys, tomllib
plan = tomllib.load(open(sys.argv[1], "rb"))
assert len(plan["brokers"]) == 3 and len(plan["generators"]) == 2, plan
assert len(plan["bootstrap"].split(",")) == 3 and "prometheus" in plan, plan
PY
    for scenario in cpu network; do
        python3 - "$reports/$scenario/evidence.json" <<'PY' || fail "a broker agent read something else than its broker's unit"
import json, sys
diagnosis = json.load(open(sys.argv[1]))
brokers = diagnosis["plan"]["brokers"]
watching = diagnosis.get("watching", {})
for url in brokers:
    reads = watching.get(url, "nothing reported")
    if not reads.startswith("cgroup:/") or not reads.split(" ")[0].endswith("/system.slice/kafka.service") \
            or "kafka.Kafka" not in reads:
        sys.exit(f"{url} reads {reads}")
print(f"package: {len(brokers)} broker agents read their broker's unit, e.g. {watching[brokers[0]]}")
PY
    done
fi
echo "package: ok in $((SECONDS - started)) s"
