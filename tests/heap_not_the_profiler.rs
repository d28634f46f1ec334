//! The heap profile shows the program's memory, not the profiler's: the symbolizer's
//! DWARF caches (before: 54.79 of 56.51 MB in use on `http_server`, 97%) are allocated
//! outside heap sampling. Its own file: it owns the global allocator's sampling rate.

#![cfg(target_os = "linux")]

#[global_allocator]
static ALLOC: profile::Allocator = profile::Allocator::system();

#[test]
fn symbolizing_is_not_charged_to_the_heap_profile() {
    profile::runtime::heap::set_rate(4096).unwrap();
    // The program's own: 4 MiB kept.
    let keep: Vec<Vec<u8>> = (0..64).map(|i| vec![i as u8; 64 * 1024]).collect();
    // The profiler's: the first symbolization opens and parses this binary's DWARF.
    let dump = profile::runtime::threads::snapshot().unwrap();
    assert!(!dump.threads().is_empty());
    let p = profile::runtime::heap::profile().unwrap();
    let i = p.sample_type_index("inuse_space").unwrap();
    let total: i64 = p.samples.iter().map(|s| s.values[i]).sum();
    let profiler: i64 = p
        .samples
        .iter()
        .filter(|s| {
            p.stack_names(s).iter().any(|n| {
                n.contains("symbolize") || n.starts_with("addr2line::") || n.starts_with("gimli::")
            })
        })
        .map(|s| s.values[i])
        .sum();
    println!("in use: {total} B, of which under the symbolizer: {profiler} B");
    assert!(total >= 2 << 20, "the program's 4 MiB is missing: {total}");
    assert!(
        profiler * 100 <= total,
        "{profiler} of {total} in-use bytes are the symbolizer's"
    );
    std::hint::black_box(keep);
}
