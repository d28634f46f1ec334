//! A write that fails half-way (here: the file size limit, RLIMIT_FSIZE, standing in for a
//! full disk) is an `Error::Io` naming the path; no partial file appears and the earlier
//! profile at that path is untouched. Its own file: the limit is process-wide.

#![cfg(target_os = "linux")]

mod common;

use std::fs;
use std::time::Duration;

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::{SigHandler, Signal, signal};

#[test]
fn failed_write_keeps_the_earlier_profile_and_leaves_no_partial_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("cpu.pb.gz");
    let earlier = b"an earlier profile that must survive".repeat(10);
    fs::write(&target, &earlier).unwrap();

    let guard = common::guard_at(&target);
    common::busy_loop(Duration::from_millis(300));

    // Writes beyond 64 bytes now fail with EFBIG instead of raising SIGXFSZ.
    // SAFETY: ignoring SIGXFSZ installs no handler code.
    unsafe { signal(Signal::SIGXFSZ, SigHandler::SigIgn) }.unwrap();
    let (soft, hard) = getrlimit(Resource::RLIMIT_FSIZE).unwrap();
    setrlimit(Resource::RLIMIT_FSIZE, 64, hard).unwrap();
    let result = guard.stop();
    setrlimit(Resource::RLIMIT_FSIZE, soft, hard).unwrap();

    let err = result.expect_err("the write must fail");
    match &err {
        profile::Error::Io { path, source } => {
            assert_eq!(path, &target);
            assert_eq!(source.raw_os_error(), Some(nix::libc::EFBIG), "{source}");
        }
        other => panic!("expected Error::Io, got {other:?}"),
    }
    assert!(err.to_string().contains("cpu.pb.gz"), "{err}");
    assert_eq!(
        fs::read(&target).unwrap(),
        earlier,
        "earlier profile untouched"
    );
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec![target.file_name().unwrap().to_owned()],
        "no temp file left"
    );

    // The slot was released despite the failure.
    let g = profile::start()
        .path(dir.path().join("next"))
        .quiet()
        .no_shutdown_hook()
        .build()
        .unwrap();
    g.stop().unwrap();
}
