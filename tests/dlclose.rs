//! Samples in a library that is unloaded (`dlclose`) before the profile is written keep
//! the library's mapping (file, build ID) and function names. Before: `<unknown>` with no
//! mapping, 77% of the CPU of a dlopen/dlclose loop.
//!
//! Builds `tests/fixtures/spin.c` into a shared library with `cc` (skipped without it,
//! failing under `CI=true`).

#![cfg(target_os = "linux")]

use std::ffi::CString;
use std::path::Path;
use std::process::Command;

use nix::libc;

fn build_library(dir: &Path) -> Option<std::path::PathBuf> {
    let out = dir.join("libspin.so");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/spin.c");
    let ok = Command::new("cc")
        .args(["-shared", "-fPIC", "-O1", "-g", "-Wl,--build-id", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(out)
}

#[test]
fn samples_in_an_unloaded_library_keep_its_names() {
    let dir = tempfile::tempdir().unwrap();
    let Some(lib) = build_library(dir.path()) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "cc is needed under CI=true"
        );
        println!("SKIPPED: no C compiler (cc) to build the test library");
        return;
    };
    let name = CString::new(lib.to_str().unwrap()).unwrap();
    let profiler = profile::runtime::cpu::start(250).unwrap();
    for _ in 0..40 {
        // SAFETY: our own library, whose only symbol has this signature; dlclose'd after
        // the call returns.
        unsafe {
            let h = libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            assert!(!h.is_null());
            let f = libc::dlsym(h, c"spin_in_library".as_ptr());
            assert!(!f.is_null());
            let f: extern "C" fn(u64) -> u64 = std::mem::transmute(f);
            std::hint::black_box(f(20_000_000));
            libc::dlclose(h);
        }
    }
    let p = profiler.stop().unwrap();
    let total: i64 = p.samples.iter().map(|s| s.values[0]).sum();
    let named: i64 = p
        .samples
        .iter()
        .filter(|s| {
            let leaf = s
                .location_ids
                .first()
                .and_then(|id| p.locations.iter().find(|l| l.id == *id));
            leaf.is_some_and(|l| {
                let mapped = p
                    .mappings
                    .iter()
                    .find(|m| m.id == l.mapping_id)
                    .is_some_and(|m| m.filename.ends_with("libspin.so") && !m.build_id.is_empty());
                let func = l.lines.iter().any(|line| {
                    p.functions
                        .iter()
                        .any(|f| f.id == line.function_id && f.name == "spin_in_library")
                });
                mapped && func
            })
        })
        .map(|s| s.values[0])
        .sum();
    println!("{named} of {total} samples named in the unloaded library");
    assert!(total > 0);
    assert!(
        named as f64 >= 0.5 * total as f64,
        "only {named} of {total} samples named spin_in_library in libspin.so"
    );
}
