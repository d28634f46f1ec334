//! `Symbolization::Off`: profiles carry addresses, mappings and build IDs only, and pprof
//! names them from the binary (Go 1.19, 1.26 and the newest pprof in CI). Its own file:
//! the mode is process-wide.

#![cfg(all(
    target_os = "linux",
    any(target_arch = "x86_64", target_arch = "aarch64")
))]

mod common;

use std::time::Duration;

use profile::runtime::symbols::{self, Symbolization};

#[test]
fn unsymbolized_profiles_are_named_by_pprof_from_the_binary() {
    symbols::set(Symbolization::Off);
    let cpu = profile::runtime::cpu::start(250).unwrap();
    common::until_signals(&cpu, 50, 1, || {
        common::busy_loop(Duration::from_millis(50));
    });
    let p = cpu.stop().unwrap();
    symbols::set(Symbolization::Full);

    assert!(p.functions.is_empty(), "functions: {:?}", p.functions.len());
    assert!(p.locations.iter().all(|l| l.lines.is_empty()));
    let exe = std::env::current_exe().unwrap();
    let main = &p.mappings[0];
    assert_eq!(main.filename, exe.to_string_lossy(), "{:?}", p.mappings);
    assert!(!main.build_id.is_empty(), "no build ID: {main:?}");
    assert!(!main.has_functions, "{main:?}");
    assert!(
        p.locations
            .iter()
            .all(|l| l.mapping_id != 0 || l.address == 0),
        "locations without a mapping"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cpu.pb.gz");
    p.write_to(std::fs::File::create(&file).unwrap()).unwrap();
    let Some(go) = common::go() else { return };
    let exe = exe.to_string_lossy().into_owned();
    let top = common::pprof(go, &["-top", &exe], &file);
    println!("{top}");
    // Go 1.19's pprof misnames this debug (opt-level 0) test binary's frames from its
    // DWARF ("fmt", "zip" for a spin loop); it names a release build's right, as 1.26 and
    // the newest pprof name both (docs/readers.md). It must still read the file cleanly.
    let version = std::process::Command::new(go)
        .arg("version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    if std::env::var_os("PPROF_READER").is_none() && version.contains("go1.19") {
        println!("Go 1.19: not checking names of a debug build ({version})");
        return;
    }
    assert!(
        top.contains("busy_loop"),
        "pprof did not name busy_loop:\n{top}"
    );
}
