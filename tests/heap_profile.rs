//! Heap profiles with the allocator wrapper installed: accuracy of in-use and allocated
//! estimates against a known live set, matched frees, the guard modes, and what
//! `go tool pprof` makes of the files. Tests here change the process-wide sampling rate,
//! so they take turns through `serial()`.

#![cfg(target_os = "linux")]

mod common;

use std::hint::black_box;
use std::path::Path;

use profile::Profile;
use profile::runtime::heap;

#[global_allocator]
static ALLOC: profile::Allocator = profile::Allocator::system();

const SMALL: usize = 4096;
const LARGE: usize = 96 * 1024;
const SMALL_COUNT: usize = 64 * 1024 * 1024 / SMALL; // 16384 objects, 64 MiB
const LARGE_COUNT: usize = 64 * 1024 * 1024 / LARGE; // 682 objects, ~64 MiB

/// 64 MiB in 4 KiB objects.
#[inline(never)]
fn leak_small(out: &mut Vec<Box<[u8]>>) {
    for _ in 0..SMALL_COUNT {
        out.push(black_box(vec![1u8; SMALL].into_boxed_slice()));
    }
}

/// ~64 MiB in 96 KiB objects.
#[inline(never)]
fn leak_large(out: &mut Vec<Box<[u8]>>) {
    for _ in 0..LARGE_COUNT {
        out.push(black_box(vec![1u8; LARGE].into_boxed_slice()));
    }
}

/// Sum of sample type `ty` over samples whose stack contains a function ending in `f`.
fn value_in(p: &Profile, ty: &str, f: &str) -> i64 {
    let i = p.sample_type_index(ty).unwrap();
    p.samples
        .iter()
        .filter(|s| p.stack_names(s).iter().any(|n| n.ends_with(f)))
        .map(|s| s.values[i])
        .sum()
}

fn within(estimate: i64, truth: usize, tolerance: f64) -> bool {
    (estimate as f64 / truth as f64 - 1.0).abs() <= tolerance
}

#[test]
fn inuse_and_alloc_estimates_are_within_ten_percent() {
    let _s = common::serial();
    // Rate 4 KiB: a 4 KiB object is sampled with p = 1 - 1/e, ~10 000 samples for
    // leak_small (noise ~0.6%); 96 KiB objects are all sampled.
    let previous = heap::set_rate(4096).unwrap();
    let mut small = Vec::with_capacity(SMALL_COUNT);
    let mut large = Vec::with_capacity(LARGE_COUNT);
    leak_small(&mut small);
    leak_large(&mut large);

    let p = heap::profile().unwrap();
    let types: Vec<_> = p
        .sample_types
        .iter()
        .map(|t| format!("{}/{}", t.ty, t.unit))
        .collect();
    assert_eq!(
        types,
        [
            "alloc_objects/count",
            "alloc_space/bytes",
            "inuse_objects/count",
            "inuse_space/bytes"
        ]
    );
    assert_eq!(p.period, 4096);
    assert_eq!(p.default_sample_type, None);
    let small_truth = SMALL_COUNT * SMALL;
    let large_truth = LARGE_COUNT * LARGE;
    let small_inuse = value_in(&p, "inuse_space", "leak_small");
    let large_inuse = value_in(&p, "inuse_space", "leak_large");
    println!(
        "leak_small inuse {small_inuse} (truth {small_truth}), leak_large inuse {large_inuse} (truth {large_truth})"
    );
    assert!(
        within(small_inuse, small_truth, 0.10),
        "leak_small: {small_inuse} vs {small_truth}"
    );
    assert!(
        within(large_inuse, large_truth, 0.10),
        "leak_large: {large_inuse} vs {large_truth}"
    );
    let small_alloc = value_in(&p, "alloc_space", "leak_small");
    let large_alloc = value_in(&p, "alloc_space", "leak_large");
    assert!(within(
        small_alloc + large_alloc,
        small_truth + large_truth,
        0.10
    ));
    assert!(within(
        value_in(&p, "inuse_objects", "leak_small"),
        SMALL_COUNT,
        0.10
    ));

    // The allocations are charged to the functions that made them (flat), not to
    // allocator or std frames above them.
    for f in ["leak_small", "leak_large"] {
        for s in p
            .samples
            .iter()
            .filter(|s| p.stack_names(s).iter().any(|n| n.ends_with(f)))
        {
            let leaf = p.stack_names(s)[0];
            assert!(leaf.ends_with(f), "{f}'s sample has leaf {leaf}");
        }
    }
    // Every sample carries the object size, and the allocator's frames are trimmed.
    for s in &p.samples {
        assert!(s.labels.iter().any(|l| l.key == "bytes"), "{s:?}");
        let leaf = p.stack_names(s).first().copied().unwrap_or("");
        assert!(
            !leaf.starts_with("profile::heap")
                && !leaf.starts_with("<profile::heap")
                && !leaf.starts_with("backtrace::")
                && !leaf.starts_with("__rust_")
                && !leaf.starts_with("alloc::alloc::"),
            "allocator frame left at the top: {leaf}"
        );
    }

    // Free half of leak_small's objects: its in-use halves, its allocations do not change.
    small.truncate(SMALL_COUNT / 2);
    let q = heap::profile().unwrap();
    let small_inuse_after = value_in(&q, "inuse_space", "leak_small");
    assert!(
        within(small_inuse_after, small_truth / 2, 0.10),
        "after freeing half: {small_inuse_after} vs {}",
        small_truth / 2
    );
    assert_eq!(value_in(&q, "alloc_space", "leak_small"), small_alloc);
    assert!(within(
        value_in(&q, "inuse_space", "leak_large"),
        large_truth,
        0.10
    ));

    drop((small, large));
    let stats = heap::stats();
    assert_eq!(stats.rate, 4096);
    assert_eq!(stats.dropped_samples, 0);
    assert!(
        stats.reserved_bytes > 0 && stats.reserved_bytes < 64 << 20,
        "{stats:?}"
    );
    heap::set_rate(previous).unwrap();
}

#[test]
fn guard_modes_write_heap_and_allocs_files_and_restore_the_rate() {
    let _s = common::serial();
    heap::set_rate(0).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let guard = profile::start()
        .path(dir.path())
        .mem()
        .rate(8192)
        .quiet()
        .no_shutdown_hook()
        .build()
        .unwrap();
    assert_eq!(heap::rate(), 8192);
    let mut keep = Vec::new();
    leak_large(&mut keep);
    let path = guard.stop().unwrap();
    assert_eq!(path, dir.path().join("heap.pb.gz"));
    assert_eq!(heap::rate(), 0, "previous rate restored");
    let p = common::decode(&path);
    assert_eq!(p.period, 8192);
    assert!(within(
        value_in(&p, "inuse_space", "leak_large"),
        LARGE_COUNT * LARGE,
        0.10
    ));

    // allocs: same data, opens on alloc_space; a runtime rate set before is restored.
    heap::set_rate(1 << 20).unwrap();
    let guard = profile::start()
        .path(dir.path())
        .allocs()
        .quiet()
        .no_shutdown_hook()
        .build()
        .unwrap();
    assert_eq!(heap::rate(), heap::DEFAULT_RATE);
    drop(keep);
    let mut again = Vec::new();
    leak_large(&mut again);
    let path = guard.stop().unwrap();
    assert_eq!(path, dir.path().join("allocs.pb.gz"));
    assert_eq!(heap::rate(), 1 << 20);
    let p = common::decode(&path);
    assert_eq!(p.default_sample_type.as_deref(), Some("alloc_space"));
    assert!(value_in(&p, "alloc_space", "leak_large") > 0);
    heap::set_rate(0).unwrap();
}

#[test]
fn go_tool_pprof_reads_heap_and_allocs_profiles() {
    let _s = common::serial();
    let Some(go) = common::go() else { return };
    heap::set_rate(0).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut keep = Vec::new();
    let guard = profile::start()
        .path(dir.path())
        .mem()
        .quiet()
        .no_shutdown_hook()
        .build()
        .unwrap();
    leak_small(&mut keep);
    leak_large(&mut keep);
    let heap_file = guard.stop().unwrap();
    let guard = profile::start()
        .path(dir.path())
        .allocs()
        .quiet()
        .no_shutdown_hook()
        .build()
        .unwrap();
    leak_large(&mut keep);
    let allocs_file = guard.stop().unwrap();
    drop(keep);

    let run = |args: &[&str], file: &Path| {
        let out = std::process::Command::new(go)
            .args(["tool", "pprof"])
            .args(args)
            .arg(file)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success() && stderr.trim().is_empty(),
            "{args:?}: {stderr}"
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = run(&["-sample_index=inuse_space", "-top"], &heap_file);
    assert!(top.contains("Type: inuse_space"), "{top}");
    assert!(
        top.contains("leak_small") && top.contains("leak_large"),
        "{top}"
    );
    let top = run(&["-sample_index=alloc_space", "-top"], &allocs_file);
    assert!(top.contains("Type: alloc_space"), "{top}");
    assert!(top.contains("leak_large"), "{top}");
    // The allocs file opens on alloc_space by itself.
    let top = run(&["-top"], &allocs_file);
    assert!(top.contains("Type: alloc_space"), "{top}");
    let raw = run(&["-raw"], &heap_file);
    assert!(raw.contains("PeriodType: space bytes"), "{raw}");
    // Object sizes as numeric labels, as Go writes them.
    assert!(
        raw.contains("bytes:[4096]") && raw.contains("bytes:[98304]"),
        "{raw}"
    );
}

/// Grows one vector by realloc, in a frame of its own.
#[inline(never)]
fn grow(v: &mut Vec<u8>) {
    v.reserve_exact(100_000);
}

#[test]
fn reallocs_move_in_use_to_the_new_block() {
    let _s = common::serial();
    // Rate 1: every allocation is recorded and nothing is scaled, so values are exact.
    heap::set_rate(1).unwrap();
    let mut v: Vec<u8> = black_box(Vec::with_capacity(1000));
    grow(&mut v);
    let cap = v.capacity();
    let p = heap::profile().unwrap();
    heap::set_rate(0).unwrap();
    // The grown block is live under `grow`; the first block was freed by the realloc.
    assert_eq!(value_in(&p, "inuse_space", "grow") as usize, cap);
    assert_eq!(value_in(&p, "alloc_space", "grow") as usize, cap);
    let first = p
        .samples
        .iter()
        .find(|s| {
            s.labels.iter().any(|l| {
                l.key == "bytes"
                    && l.value
                        == profile::LabelValue::Num {
                            value: 1000,
                            unit: String::new(),
                        }
            }) && p
                .stack_names(s)
                .iter()
                .any(|n| n.ends_with("reallocs_move_in_use_to_the_new_block"))
        })
        .expect("the 1000-byte block was recorded");
    assert_eq!(
        first.values[2..],
        [0, 0],
        "freed by the realloc: nothing in use"
    );
    drop(v);
}

/// A block allocated in a frame of its own.
#[inline(never)]
fn keep_block() -> Vec<u8> {
    black_box(Vec::with_capacity(3000))
}

#[test]
fn a_refused_realloc_leaves_the_block_in_use() {
    let _s = common::serial();
    heap::set_rate(1).unwrap();
    let mut v = keep_block();
    // 2^60 bytes: within Layout's limits, so the request reaches realloc, which malloc
    // refuses (no address space that large); the old block stays the vector's.
    assert!(v.try_reserve_exact(1 << 60).is_err());
    let live = heap::stats().live_samples;
    let p = heap::profile().unwrap();
    heap::set_rate(0).unwrap();
    assert!(live >= 1, "{live} live samples");
    assert_eq!(
        value_in(&p, "inuse_space", "keep_block"),
        3000,
        "the block the refused realloc left in place is still in use"
    );
    assert_eq!(value_in(&p, "inuse_objects", "keep_block"), 1);
    drop(v);
}

#[test]
fn cpu_and_heap_profiles_run_together_at_the_runtime_level() {
    let _s = common::serial();
    heap::set_rate(64 * 1024).unwrap();
    let cpu = profile::runtime::cpu::start(100).unwrap();
    let mut keep = Vec::new();
    leak_large(&mut keep);
    common::until_signals(&cpu, 20, 1, || {
        common::busy_loop(std::time::Duration::from_millis(20));
    });
    let cpu_profile = cpu.stop().unwrap();
    let heap_profile = heap::profile().unwrap();
    heap::set_rate(0).unwrap();
    assert!(common::samples_in(&cpu_profile, "busy_loop") > 0);
    assert!(value_in(&heap_profile, "inuse_space", "leak_large") > 0);
    drop(keep);
}
