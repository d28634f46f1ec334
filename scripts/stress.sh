#!/usr/bin/env bash
# Long runs of the stress tests (CI runs them for a few seconds each). Both count thread
# dumps (not seconds, so a busy machine does the same work, only slower).
#   scripts/stress.sh [SECONDS]      default 60
set -euo pipefail
cd "$(dirname "$0")/.."
STRESS_SECS="${1:-60}"
# About 30 dumps a second in a release build.
export STRESS_DUMPS="$((STRESS_SECS * 30))"
cargo test --release --test cpu_stress -- --nocapture
cargo test --release --test thread_dump_stress -- --nocapture
