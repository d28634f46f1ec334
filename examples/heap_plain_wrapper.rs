//! The `program` workload under `profile::Allocator<System>`, sampling off or at 512 KiB:
//! `heap_plain_wrapper off|on [ITERATIONS]`, beside `heap_plain_system` (its docs give
//! the commands).

#[path = "../benches/common/heap_plain.rs"]
mod plain;

#[global_allocator]
static GLOBAL: profile::Allocator<std::alloc::System> = profile::Allocator::new(std::alloc::System);

fn main() {
    plain::run(true);
}
