#!/usr/bin/env bash
# Runs the test commands of .ci/run while N busy loops (default 4) compete for the CPUs:
# the suite must pass on a busy machine (tests count events, deadlines only catch hangs).
#
#   scripts/loaded-ci.sh [N]
#
# The commands are read from .ci/run itself (its `cargo test` / `cargo build` lines), so
# the two cannot drift apart; run .ci/run once first to install what the tests need.
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-4}"
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
for cmd in "${commands[@]}"; do
    echo "+ $cmd"
    eval "$cmd"
done
echo "loaded-ci: all ${#commands[@]} commands passed under load"
