#!/usr/bin/env bash
# Long runs of the stress tests (CI runs them for 3 s each).
#   scripts/stress.sh [SECONDS]      default 60
set -euo pipefail
cd "$(dirname "$0")/.."
export STRESS_SECS="${1:-60}"
# thread_dump_stress counts dumps: about 30 a second in a release build.
export STRESS_DUMPS="$((STRESS_SECS * 30))"
cargo test --release --test cpu_stress -- --nocapture
cargo test --release --test thread_dump_stress -- --nocapture
