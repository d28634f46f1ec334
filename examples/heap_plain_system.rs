//! The `program` workload under System alone, for exact instruction counts beside
//! `heap_plain_wrapper` (see `docs/performance.md`):
//!
//! ```text
//! cargo build --release --example heap_plain_system --example heap_plain_wrapper
//! valgrind --tool=cachegrind --cache-sim=no target/release/examples/heap_plain_system off 3000
//! valgrind --tool=cachegrind --cache-sim=no target/release/examples/heap_plain_wrapper off 3000
//! valgrind --tool=cachegrind --cache-sim=no target/release/examples/heap_plain_wrapper on 3000
//! ```

#[path = "../benches/common/heap_plain.rs"]
mod plain;

#[global_allocator]
static GLOBAL: std::alloc::System = std::alloc::System;

fn main() {
    plain::run(false);
}
