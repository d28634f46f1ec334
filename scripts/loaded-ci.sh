#!/usr/bin/env bash
# Runs the test commands of .ci/run while N busy loops (default 4) compete for the CPUs:
# the suite must pass on a busy machine (tests count events, deadlines only catch hangs).
#
#   scripts/loaded-ci.sh [N] [FROM]
#
# FROM (a piece of a command's text) starts at the first command holding it, to resume
# a run that stopped there: scripts/loaded-ci.sh 4 tokio_unstable
#
# The commands are read from .ci/run itself (its `cargo test` / `cargo build` lines), so
# the two cannot drift apart; run .ci/run once first to install what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-4}"
FROM="${2:-}"
export PPROF_NEWEST
PPROF_NEWEST="$(go env GOPATH)/bin/pprof"
export GO_CHECKER
GO_CHECKER="$(command -v go)"
# The Pyroscope server .ci/run built (the version it pins), for tests/push_pyroscope.rs.
export PYROSCOPE_BIN
PYROSCOPE_BIN="${PYROSCOPE_BIN:-$(go env GOPATH)/bin/pyroscope-$(sed -n 's/^PYROSCOPE_VERSION=//p' .ci/run)}"
if [ ! -x "$PYROSCOPE_BIN" ]; then
    echo "loaded-ci: no Pyroscope server at $PYROSCOPE_BIN; run .ci/run once first" >&2
    exit 1
fi
pids=()
for _ in $(seq "$N"); do
    (while :; do :; done) &
    pids+=("$!")
done
trap 'kill "${pids[@]}" 2>/dev/null || true' EXIT
echo "loaded-ci: $N busy loops on $(nproc) CPUs"
mapfile -t commands < <(grep -E '^([A-Z_]+=[^ ]+ )*cargo (test|build)' .ci/run)
if [ -n "$FROM" ]; then
    for i in "${!commands[@]}"; do
        if [[ "${commands[$i]}" == *"$FROM"* ]]; then
            commands=("${commands[@]:$i}")
            break
        fi
        if [ "$i" -eq $((${#commands[@]} - 1)) ]; then
            echo "loaded-ci: no command of .ci/run holds '$FROM'" >&2
            exit 2
        fi
    done
fi
for cmd in "${commands[@]}"; do
    echo "+ $cmd"
    eval "$cmd"
done
echo "loaded-ci: all ${#commands[@]} commands passed under load"
