//! The builder and guard: bad input is an error before anything starts, exactly one of
//! many concurrent builds wins, stop/drop write complete files. Tests that start a guard
//! take turns through `SERIAL` (one guard per process is the rule under test).

#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use profile::{Error, ProfileKind};

fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

#[test]
fn zero_frequency_is_rejected_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let err = profile::start()
        .path(&out)
        .cpu()
        .frequency(0)
        .build()
        .unwrap_err();
    assert!(
        matches!(err, Error::InvalidFrequency { hz: 0, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("between 1 and 10000 Hz"), "{err}");
    assert!(!out.exists(), "nothing may be created for a rejected build");
}

#[test]
fn frequency_above_10khz_is_rejected() {
    let err = profile::start()
        .cpu()
        .frequency(10_001)
        .build()
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidFrequency {
                what: "CPU",
                hz: 10_001,
                max: 10_000
            }
        ),
        "{err:?}"
    );
    assert!(matches!(
        profile::runtime::cpu::start(0),
        Err(Error::InvalidFrequency { hz: 0, .. })
    ));
}

#[test]
fn path_naming_a_file_is_an_io_error_with_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-dir");
    fs::write(&file, b"keep me").unwrap();
    let err = profile::start().path(&file).build().unwrap_err();
    match &err {
        Error::Io { path, source } => {
            assert_eq!(path, &file);
            assert_eq!(source.kind(), ErrorKind::NotADirectory);
        }
        other => panic!("expected Error::Io, got {other:?}"),
    }
    assert!(err.to_string().contains("not-a-dir"), "{err}");
    assert_eq!(fs::read(&file).unwrap(), b"keep me");
}

#[test]
fn file_naming_a_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = profile::start().file(dir.path()).build().unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, source } if path == dir.path() && source.kind() == ErrorKind::IsADirectory),
        "{err:?}"
    );
}

#[test]
fn unwritable_directory_is_an_io_error_with_the_path() {
    // /proc/self is a directory nobody, root included, can create files in.
    let err = profile::start().path("/proc/self").build().unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path == Path::new("/proc/self")),
        "{err:?}"
    );
    // A directory that cannot be created.
    let err = profile::start()
        .path("/proc/self/profiles")
        .build()
        .unwrap_err();
    assert!(
        matches!(&err, Error::Io { path, .. } if path == Path::new("/proc/self/profiles")),
        "{err:?}"
    );
    // Permission bits, where they apply (not to root).
    if !nix::unistd::geteuid().is_root() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o555)).unwrap();
        let err = profile::start().path(dir.path()).build().unwrap_err();
        assert!(
            matches!(&err, Error::Io { source, .. } if source.kind() == ErrorKind::PermissionDenied)
        );
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    }
}

#[test]
fn path_is_created_and_drop_writes_the_file() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a/b/profiles");
    {
        let _guard = common::guard_in(&out);
        assert!(out.is_dir(), ".path() creates the directory at build time");
        common::busy_until_cpu_signals(20);
    }
    assert_eq!(
        files_in(&out),
        vec![out.join("cpu.pb.gz")],
        "one complete file, no temp files"
    );
    let p = common::decode(&out.join("cpu.pb.gz"));
    assert!(p.total("samples") > 0);
}

#[test]
fn file_option_writes_exactly_there_and_replaces_an_older_profile() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("sub/my-name.prof");
    let guard = common::guard_at(&target);
    assert_eq!(guard.path(), target);
    let first = guard.stop().unwrap();
    assert_eq!(first, target);
    let before = fs::read(&target).unwrap();
    let guard = common::guard_at(&target);
    common::busy_loop(Duration::from_millis(100));
    guard.stop().unwrap();
    assert_ne!(fs::read(&target).unwrap(), before);
    common::decode(&target);
}

#[test]
fn default_output_is_a_kept_temp_dir_named_profile() {
    let _s = common::serial();
    let guard = profile::start().quiet().no_shutdown_hook().build().unwrap();
    assert_eq!(guard.kind(), ProfileKind::Cpu);
    let path = guard.stop().unwrap();
    let dir = path.parent().unwrap();
    assert!(
        dir.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("profile"),
        "{path:?}"
    );
    assert!(dir.starts_with(std::env::temp_dir()), "{path:?}");
    assert_eq!(path.file_name().unwrap(), "cpu.pb.gz");
    common::decode(&path);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn exactly_one_of_many_concurrent_builds_wins() {
    let _s = common::serial();
    let dir = tempfile::tempdir().unwrap();
    let threads = 8;
    let barrier = Arc::new(Barrier::new(threads));
    let handles: Vec<_> = (0..threads)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            let out = dir.path().join(format!("t{i}"));
            std::thread::spawn(move || {
                barrier.wait();
                profile::start()
                    .path(out)
                    .quiet()
                    .no_shutdown_hook()
                    .build()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let mut winners = Vec::new();
    for r in results {
        match r {
            Ok(g) => winners.push(g),
            Err(Error::AlreadyActive {
                mode: ProfileKind::Cpu,
            }) => {}
            Err(e) => panic!("unexpected error {e:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one build must win");
    // While it runs, another build fails and names the running mode.
    let err = profile::start().cpu().quiet().build().unwrap_err();
    assert_eq!(
        err.to_string(),
        "profile: a cpu profile is already running; stop it before starting another"
    );
    let path = winners.pop().unwrap().stop().unwrap();
    common::decode(&path);
    // After stop a new guard can start.
    let again = common::guard_in(dir.path());
    again.stop().unwrap();
}

#[test]
fn heap_modes_without_the_wrapper_say_which_line_to_add() {
    // This test binary does not install profile::Allocator.
    assert!(!profile::runtime::heap::is_installed());
    for builder in [profile::start().mem(), profile::start().allocs()] {
        let err = builder.quiet().build().unwrap_err();
        assert!(matches!(err, Error::AllocatorNotInstalled), "{err:?}");
        assert!(
            err.to_string().contains(
                "#[global_allocator] static ALLOC: profile::Allocator = profile::Allocator::system();"
            ),
            "{err}"
        );
    }
    assert!(matches!(
        profile::runtime::heap::set_rate(4096),
        Err(Error::AllocatorNotInstalled)
    ));
    // Turning sampling off needs no wrapper.
    assert_eq!(profile::runtime::heap::set_rate(0).unwrap(), 0);
}

#[test]
fn zero_heap_rate_is_rejected() {
    let err = profile::start().mem().rate(0).build().unwrap_err();
    assert!(matches!(err, Error::InvalidRate { rate: 0 }), "{err:?}");
    assert!(
        err.to_string().contains("1 records every allocation"),
        "{err}"
    );
}
