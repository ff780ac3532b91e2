#!/usr/bin/env bash
# Benchmark: the rule engine evaluating the shipped rule set over 10,000 series of 3,600
# points each (an hour at 1 s on ~350 hosts); target under 100 ms.
#
#   bash tests/bench/rules-eval.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
source tests/bench/lib.sh
for run in 1 2 3; do
    line=$("$plateau" rules bench --dir rules --series 10000 --points 3600)
    echo "$line"
    target "run $run, ms" "$(grep -o '[0-9.]* ms' <<<"$line" | grep -o '[0-9.]*')" "<" 100
done
finish
