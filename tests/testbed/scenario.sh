#!/usr/bin/env bash
# Labelled bottleneck scenarios on the testbed, read from a catalog (tests/testbed/
# scenarios.toml, or --file F): each injects its real faults, runs `plateau diagnose`, and
# checks the verdict, its cause, its runner-up and a minimum confidence against the
# diagnosis's evidence.json (the catalog's reader and judge is the `scenarios` test binary,
# typed against plateau's own verdict). Prints a line per scenario; exit status 1 when a
# verdict is wrong. Root only.
#
#   bash tests/testbed/scenario.sh network client none     # or: all (the default)
#   bash tests/testbed/scenario.sh --file my-faults.toml all
#   SCENARIO_REPORTS=DIR bash tests/testbed/scenario.sh all  # keeps each report in DIR/NAME
#   bash tests/testbed/scenario.sh --readme all             # also writes the table into docs/testing.md
#
# On Apache Kafka (TESTBED_BROKER=kafka, the default) every scenario runs on one testbed,
# brought up and warmed once: a scenario creates a topic of its own, injects its fault,
# diagnoses, and removes the fault, so that the next starts from a healthy warm cluster.
# On tansu (TESTBED_BROKER=tansu) each scenario brings up a testbed of its own.
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/../.."
export TESTBED_BROKER="${TESTBED_BROKER:-kafka}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/plateau-target}"
readme=0
catalog=tests/testbed/scenarios.toml
while [[ ${1:-} == --* ]]; do
    case $1 in
        --readme) readme=1; shift ;;
        --file) [[ $2 == /* ]] && catalog=$2 || catalog="$caller/$2"; shift 2 ;;
        *) echo "unknown option '$1' (known: --readme, --file FILE)" >&2; exit 2 ;;
    esac
done
results=$(mktemp)
trap 'rm -f "$results"' EXIT

# The catalog's reader and judge, built with the tests.
judge=$(cargo test --test scenarios --no-run --message-format=json --quiet 2>/dev/null | python3 -c '
import json, sys
found = [m["executable"] for m in map(json.loads, sys.stdin)
         if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == "scenarios"]
print(found[-1] if found else "")')
[[ -x $judge ]] || { echo "cannot build the scenarios judge: cargo test --test scenarios --no-run" >&2; exit 2; }
"$judge" check "$catalog" >&2 || exit 2

# Checks scenario $1's diagnosis (its report in $2) against the catalog, started at $3 s:
# prints its line, adds its table row, keeps the report when it is wrong.
score() {
    local name=$1 out=$2 started=$3 status=0
    "$judge" score "$catalog" "$TESTBED_BROKER" "$name" "$out/report" "$((SECONDS - started))" "$results" || status=1
    if [[ -n ${SCENARIO_REPORTS:-} && -d $out/report ]]; then
        mkdir -p "$SCENARIO_REPORTS" && rm -rf "${SCENARIO_REPORTS:?}/$name" && cp -r "$out/report" "$SCENARIO_REPORTS/$name"
    fi
    if [[ $status == 0 ]]; then
        rm -rf "$out"
    else
        echo "               report kept in $out/report" >&2
    fi
    return $status
}

# Injects (on) or removes (off) one fault of the catalog: KIND ARG… (the judge's plan).
fault() {
    local on=$1 kind=$2
    shift 2
    case $kind in
        link) testbed_limit_link "$1" "$([[ $on == on ]] && echo "$2" || echo none)" ;;
        cpu) testbed_limit_cpu "$1" "$([[ $on == on ]] && echo "$2" || echo none)" ;;
        disk_write) testbed_limit_disk "$1" "$([[ $on == on ]] && echo "$2" || echo 0)" ;;
        quota)
            if [[ $on == on ]]; then
                kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$bootstrap" --alter --entity-type clients \
                    --entity-name "$1" --add-config "producer_byte_rate=$2" >/dev/null
            else
                kafka_tool kafka.admin.ConfigCommand --bootstrap-server "$bootstrap" --alter --entity-type clients \
                    --entity-name "$1" --delete-config producer_byte_rate >/dev/null
            fi ;;
        *) echo "unknown fault kind '$kind'" >&2; return 2 ;;
    esac
}

# Every fault of the planned scenario, on or off.
faults_all() {
    local spec
    for spec in "${faults[@]}"; do
        # shellcheck disable=SC2086 # a fault is its words
        fault "$1" $spec
    done
}

# Reads scenario $1's plan from the catalog into the caller's variables (about, expected,
# min_confidence, generators_used, topic_*, pipeline, sink, storage*, flags, faults).
plan() {
    local text
    text=$("$judge" plan "$catalog" "$TESTBED_BROKER" "$1") || exit 2
    eval "$text"
}

# What a testbed's teardown left behind (namespaces, links, cgroups named after it), given
# 2.5 s: the kernel finishes tearing a namespace's devices down asynchronously.
leftovers() {
    local found try
    for try in 1 2 3 4 5; do
        found=$( (ip netns list | sed 's/^/netns /'; ip -o link show | sed 's/^[0-9]*: /link /';
            ls -d /sys/fs/cgroup/*/pltb$$* /sys/fs/cgroup/*/*/pltb$$* 2>/dev/null | sed 's/^/cgroup /') |
            grep -o "^[a-z]* [^ ]*pltb$$[^ :@]*" | sort -u | tr '\n' ' ' || true)
        [[ -z $found ]] && return 0
        sleep 0.5
    done
    echo "teardown left behind: $found" >&2
    return 1
}

# --- Apache Kafka: seed 000's three brokers, RF 3 ------------------------------------------

# Runs Kafka scenarios $@ on one testbed, in this subshell (its trap tears the testbed down).
kafka_suite() {
    source tests/testbed/testbed.sh
    local started=$SECONDS name failed=0 out topic
    # A cluster in service is warm; a minute of load compiles the brokers' hot paths.
    TESTBED_WARM_SECS=45 testbed_up
    echo "testbed up and warm in $((SECONDS - started)) s" >&2
    for name in "$@"; do
        local about expected min_confidence generators_used topic_partitions topic_rf topic_config pipeline sink
        local storage storage_on flags faults
        started=$SECONDS
        plan "$name"
        # The consumer and database hosts join before the first scenario that needs them
        # (and only then: two more agents and PostgreSQL on two cores would change the
        # other scenarios' margins).
        if [[ $pipeline == 1 ]]; then
            if [[ ${#consumers[@]} == 0 ]]; then
                testbed_pipeline
            fi
            flags+=(--consumer "${consumers[0]}" --database "${databases[0]}")
            if [[ $sink == 1 ]]; then
                flags+=(--sink "$sink_url")
            fi
        fi
        out=$(mktemp -d)
        topic="scenario-${name//+/-and-}"
        # (Inside `|| failed=1` errexit is off: a step that fails shows in its verdict.)
        kafka_topic_ready "$bootstrap" "$topic" "$topic_partitions" "$topic_rf" "${topic_config[@]}" || true
        faults_all on
        TESTBED_TOPIC=$topic TESTBED_GENERATORS=$generators_used testbed_diagnose "$out/report" "${flags[@]}" --json \
            >"$out/verdict.json" || true
        faults_all off
        # Its partitions would otherwise keep the brokers' replica fetchers busy.
        kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" --delete --topic "$topic" \
            >/dev/null 2>&1 || true
        score "$name" "$out" "$started" || failed=1
    done
    return $failed
}

# --- tansu: one broker, RF 1, a testbed per scenario ----------------------------------------

# Runs tansu scenario $1 in its own process, so that its testbed's trap tears it down.
tansu_one() {
    local name=$1 out started=$SECONDS
    local about expected min_confidence generators_used topic_partitions topic_rf topic_config pipeline sink
    local storage storage_on flags faults
    plan "$name"
    out=$(mktemp -d)
    (
        source tests/testbed/testbed.sh
        if [[ -n $storage ]]; then export TESTBED_STORAGE=$storage; fi
        if [[ -n $storage_on ]]; then export TESTBED_STORAGE_ON=$storage_on; fi
        testbed_up
        faults_all on
        testbed_diagnose "$out/report" "${flags[@]}" --json >"$out/verdict.json"
    ) || true
    local status=0
    leftovers || status=1
    score "$name" "$out" "$started" || status=1
    return $status
}

scenarios=("$@")
failed=0
started=$SECONDS
case $TESTBED_BROKER in
    kafka)
        [[ ${#scenarios[@]} -gt 0 && ${scenarios[0]} != all ]] || read -ra scenarios <<<"$("$judge" names "$catalog" kafka)"
        (kafka_suite "${scenarios[@]}") || failed=1
        leftovers || failed=1 ;;
    tansu)
        [[ ${#scenarios[@]} -gt 0 && ${scenarios[0]} != all ]] || read -ra scenarios <<<"$("$judge" names "$catalog" tansu)"
        for name in "${scenarios[@]}"; do tansu_one "$name" || failed=1; done ;;
    *) echo "TESTBED_BROKER must be kafka or tansu, not '$TESTBED_BROKER'" >&2; exit 2 ;;
esac
echo "scenarios: done in $((SECONDS - started)) s" >&2

# The table, as docs/testing.md shows it: generated here, not typed. A run of some scenarios
# replaces their rows and says so; a run of all replaces the table.
if [[ $readme == 1 ]]; then
    build=$(basename "$(dirname "${PLATEAU_BIN:-release/plateau}")")
    # Every scenario of the broker's list: the table is replaced (rows of scenarios no
    # longer defined go with it).
    read -ra every <<<"$("$judge" names "$catalog" "$TESTBED_BROKER")"
    full=0
    [[ "${scenarios[*]}" == "${every[*]}" ]] && full=1
    python3 - docs/testing.md "$results" "$TESTBED_BROKER" "$build" "$((SECONDS - started))" "${scenarios[*]}" "$full" <<'PY'
import datetime, sys
readme, results, broker, build, seconds, ran, full = sys.argv[1:]
rows = open(results).read().splitlines()
begin, end = '<!-- scenario-table:begin -->', '<!-- scenario-table:end -->'
text = open(readme).read()
if begin not in text or end not in text:
    sys.exit(f'{readme} has no {begin} … {end} section to write the table into')
head, rest = text.split(begin, 1)
old, tail = rest.split(end, 1)
name = lambda row: row.split('|')[1].strip()
header = (f'Generated by `bash tests/testbed/scenario.sh --readme` on {datetime.date.today()} '
          f'({broker}, {build} build, {seconds} s in all):')
old_lines = old.strip('\n').splitlines()
old_rows = [l for l in old_lines if l.startswith('| ') and not l.startswith('| scenario') and not l.startswith('| ---')]
ran_names = {name(r) for r in rows}
if old_rows and full != '1' and not ran_names >= {name(r) for r in old_rows}:
    # Some scenarios: their rows replace the old ones, in the old order.
    new = {name(r): r for r in rows}
    merged = [new.pop(name(r), r) for r in old_rows] + list(new.values())
    notes = [l for l in old_lines if l and not l.startswith('|')]
    header = '\n'.join(notes + [f'Re-run on {datetime.date.today()} ({broker}, {build} build): {ran}.'])
    rows = merged
table = (f'{begin}\n{header}\n\n'
         '| scenario | fault injected | expected | got (bound: cause) | runner-up | confidence (min) '
         '| plateau msg/s | time | |\n'
         '| --- | --- | --- | --- | --- | ---: | ---: | ---: | --- |\n'
         + ''.join(r + '\n' for r in rows) + end)
open(readme, 'w').write(head + table + tail)
PY
fi
exit $failed
