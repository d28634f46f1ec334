//! A program that leaks in one function and churns in another, profiled by a heap guard.
//!
//! ```text
//! cargo run --release --example heap
//! go tool pprof -sample_index=inuse_space -top ./profiles/heap.pb.gz   # what is live
//! go tool pprof -sample_index=alloc_space -top ./profiles/heap.pb.gz   # what was allocated
//! ```

use std::collections::HashMap;
use std::hint::black_box;

// One line makes heap profiling possible; it wraps the system allocator.
#[global_allocator]
static ALLOC: profile::Allocator = profile::Allocator::system();

/// Keeps every session it creates: 2000 × 8 KiB that are never freed (16 MiB live).
#[inline(never)]
fn leak_sessions(cache: &mut HashMap<u32, Vec<u8>>) {
    for id in 0..2000 {
        cache.insert(id, vec![7u8; 8 * 1024]);
    }
}

/// Allocates a lot (about 400 MiB in 4 KiB..64 KiB buffers) but frees all of it.
#[inline(never)]
fn churn_requests() -> usize {
    let mut total = 0;
    for i in 0..20_000usize {
        let size = 4096 << (i % 5);
        let buf = black_box(vec![1u8; size]);
        total += buf.len();
    }
    total
}

fn main() -> Result<(), profile::Error> {
    let guard = profile::start().path("./profiles").mem().build()?;
    let mut cache = HashMap::new();
    leak_sessions(&mut cache);
    let churned = churn_requests();
    let path = guard.stop()?;
    println!(
        "leaked {} KiB in leak_sessions, churned {} MiB in churn_requests",
        cache.len() * 8,
        churned >> 20
    );
    println!("Heap profile written to {}", path.display());
    println!("What is live (leak_sessions):");
    println!(
        "  go tool pprof -sample_index=inuse_space -top {}",
        path.display()
    );
    println!("What was allocated (churn_requests dominates):");
    println!(
        "  go tool pprof -sample_index=alloc_space -top {}",
        path.display()
    );
    Ok(())
}
