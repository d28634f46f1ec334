#!/usr/bin/env bash
# Instructions per span enter+exit for each subscriber of benches/trace_overhead.rs,
# counted by callgrind (deterministic, unlike times on a shared machine): the difference
# between 200 000 and 100 000 enters+exits, divided by 100 000.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo bench --features trace --bench trace_overhead --no-run 2>&1 | grep -q Executable
bin=$(ls -t target/release/deps/trace_overhead-* | grep -v '\.d$' | head -1)
count() {
    TRACE_OVERHEAD_ONLY="$1:$2" valgrind --tool=callgrind --callgrind-out-file=/dev/null "$bin" 2>&1 |
        grep -o 'Collected : [0-9]*' | grep -o '[0-9]*'
}
for s in bare noop fmt layer layer_fmt registry registry_noop registry_fmt; do
    a=$(count "$s" 100000)
    b=$(count "$s" 200000)
    echo "$s $(((b - a) / 100000))"
done
