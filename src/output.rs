//! Where profiles go: validating the output path before anything starts, and writing a
//! file completely or not at all (a temp file beside the target, fsync, then rename).
//!
//! # What may be at the target path
//!
//! Nothing, or a regular file (replaced by the rename), or a symbolic link to one (the
//! file it points to is replaced; the link stays). Anything else — a device such as
//! `/dev/full` or `/dev/null`, a FIFO, a socket — is refused with [`Error::Io`]
//! (`InvalidInput`, "is not a regular file"), at build time and again when writing: a
//! rename over it would replace the node itself (for a device, for every process on the
//! machine), and writing in place could not be complete-or-absent (and a FIFO without a
//! reader would block the writer forever).
//!
//! # Temp files and signals
//!
//! A write in progress publishes its temp file's path in a fixed, allocation-free slot
//! table ([`inflight`]); the shutdown hook's handler removes those files with `unlink`
//! (async-signal-safe) before a second SIGINT/SIGTERM kills the process, so an
//! interrupted write leaves neither a half-written target nor a stray `.*.tmp`.

use std::fs;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::Error;

/// Checks that `dir` is (or can be made) a directory we can create files in, creating it
/// and its parents if missing.
pub(crate) fn prepare_dir(dir: &Path) -> Result<(), Error> {
    if dir.exists() && !dir.is_dir() {
        return Err(Error::io(
            dir,
            io::Error::new(
                io::ErrorKind::NotADirectory,
                "exists and is not a directory; give .path() a directory or use .file()",
            ),
        ));
    }
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    // Permissions alone do not tell (root ignores them; read-only mounts and /proc do
    // not): try to create a file.
    tempfile::Builder::new()
        .prefix(".profile-probe")
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| Error::io(dir, e))
}

/// Checks that `file` can be written: a file name (not empty, no NUL byte, not a
/// directory), nothing but a regular file there already, and its directory writable
/// under the temp name [`write_atomic`] will use (so a name too long for that fails now,
/// not at stop).
pub(crate) fn prepare_file(file: &Path) -> Result<(), Error> {
    let invalid = |why: &str| {
        Error::io(
            file,
            io::Error::new(io::ErrorKind::InvalidInput, why.to_string()),
        )
    };
    if file.as_os_str().is_empty() {
        return Err(invalid("empty file name; give .file() a path"));
    }
    if file.as_os_str().as_encoded_bytes().contains(&0) {
        return Err(invalid("file name contains a NUL byte"));
    }
    if file.is_dir() {
        return Err(Error::io(
            file,
            io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory; give .file() a file name or use .path()",
            ),
        ));
    }
    if file.file_name().is_none() {
        return Err(invalid("has no file name (ends in `..` or `/`)"));
    }
    let target = resolve_target(file)?;
    let dir = parent_of(&target);
    prepare_dir(dir)?;
    // The temp name is the longest name the write makes: probe it.
    temp_builder(&temp_prefix(&target))
        .tempfile_in(dir)
        .map(drop)
        .map_err(|e| Error::io(file, e))
}

/// Checks a directory's target file (`dir/cpu.pb.gz`): nothing or a regular file there.
pub(crate) fn prepare_target_in(dir: &Path, file_name: &str) -> Result<(), Error> {
    resolve_target(&dir.join(file_name)).map(drop)
}

/// What a write to `path` replaces: `path` itself, or the file a symbolic link at `path`
/// points to. Refuses anything but a regular file (see the module docs).
fn resolve_target(path: &Path) -> Result<PathBuf, Error> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(path.to_path_buf()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let target = if meta.file_type().is_symlink() {
        match fs::canonicalize(path) {
            Ok(t) => t,
            // A dangling link: the write creates the file it names.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let link = fs::read_link(path).map_err(|e| Error::io(path, e))?;
                let target = parent_of(path).join(link);
                return Ok(target);
            }
            Err(e) => return Err(Error::io(path, e)),
        }
    } else {
        path.to_path_buf()
    };
    let meta = fs::metadata(&target).map_err(|e| Error::io(path, e))?;
    if meta.is_file() {
        return Ok(target);
    }
    Err(Error::io(
        path,
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "is not a regular file ({}); profiles are only written to new or regular files",
                describe(&meta.file_type())
            ),
        ),
    ))
}

fn describe(t: &fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() {
            return "a character device";
        }
        if t.is_block_device() {
            return "a block device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

fn parent_of(file: &Path) -> &Path {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A fresh directory for profiles, kept after the process exits (pkg/profile's default).
/// Private (0700, as pkg/profile's `os.MkdirTemp`): the crate chose it, and a profile
/// holds the command line, code paths and labels, which other local users must not read.
pub(crate) fn temp_dir() -> Result<PathBuf, Error> {
    let mut builder = tempfile::Builder::new();
    builder.prefix("profile");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o700));
    }
    builder
        .tempdir()
        .map(tempfile::TempDir::keep)
        .map_err(|e| Error::io(std::env::temp_dir(), e))
}

/// Writes `path` atomically: `write` fills a temp file in the same directory, which is
/// flushed, synced and renamed over `path` only if everything succeeded. On any error the
/// temp file is removed and whatever was at `path` before is untouched.
///
/// `path` must be nothing, a regular file, or a symbolic link to one (see the module
/// docs); anything else is refused before a byte is written.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), Error> {
    if path.file_name().is_none() {
        return Err(Error::io(
            path,
            io::Error::new(io::ErrorKind::InvalidInput, "has no file name"),
        ));
    }
    let target = resolve_target(path)?;
    let dir = parent_of(&target);
    let prefix = temp_prefix(&target);
    let tmp = temp_builder(&prefix)
        .tempfile_in(dir)
        .map_err(|e| Error::io(path, e))?;
    // Published for the shutdown hook's handler, which unlinks it if a second signal
    // ends the process mid-write. Cleared before the temp file is renamed or removed.
    let slot = inflight::publish(tmp.path());
    let result = (|| {
        let mut w = BufWriter::new(tmp.as_file());
        write(&mut w)?;
        w.flush()?;
        drop(w);
        tmp.as_file().sync_all()
    })();
    if let Some(slot) = slot {
        inflight::clear(slot);
    }
    result.map_err(|e| Error::io(path, e))?;
    tmp.persist(&target).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

/// The temp file's prefix for `target`: `.NAME.`.
fn temp_prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.")
}

/// The temp file beside the target: `PREFIX` + 6 random characters + `.tmp`, 0666 less
/// the umask.
fn temp_builder(prefix: &str) -> tempfile::Builder<'_, 'static> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(prefix).suffix(".tmp");
    // As os.Create and File::create: 0666 less the umask (tempfile's default is 0600).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    builder
}

/// Temp files being written, for a signal handler to remove (see the module docs).
///
/// # Layering rule
///
/// [`inflight::unlink_all`] runs in signal context: it reads fixed slots through atomics
/// and calls `unlink`, nothing else. [`inflight::publish`] and [`inflight::clear`] run on
/// ordinary threads.
pub(crate) mod inflight {
    use std::cell::UnsafeCell;
    use std::path::Path;
    use std::sync::atomic::{AtomicU8, Ordering};

    const SLOTS: usize = 4;
    const PATH_MAX: usize = 4096;
    const FREE: u8 = 0;
    const FILLING: u8 = 1;
    const PUBLISHED: u8 = 2;
    /// A handler is unlinking the path; the process is about to end.
    const UNLINKING: u8 = 3;

    struct Slot {
        state: AtomicU8,
        /// A NUL-terminated path; written only in FILLING, read only in UNLINKING.
        path: UnsafeCell<[u8; PATH_MAX]>,
    }

    // SAFETY: `path` is written only by the thread that moved `state` FREE → FILLING and
    // read only by the thread that moved it PUBLISHED → UNLINKING; the transitions are
    // acquire/release, so the accesses never overlap.
    unsafe impl Sync for Slot {}

    static TABLE: [Slot; SLOTS] = [const {
        Slot {
            state: AtomicU8::new(FREE),
            path: UnsafeCell::new([0; PATH_MAX]),
        }
    }; SLOTS];

    /// Publishes `path`; `None` if every slot is taken or the path is too long (the file
    /// is then only removed by an orderly error, not by a signal).
    pub(crate) fn publish(path: &Path) -> Option<usize> {
        let bytes = path.as_os_str().as_encoded_bytes();
        if bytes.len() >= PATH_MAX || bytes.contains(&0) {
            return None;
        }
        for (i, slot) in TABLE.iter().enumerate() {
            if slot
                .state
                .compare_exchange(FREE, FILLING, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                // SAFETY: FILLING is ours alone (see the Sync impl).
                let buf = unsafe { &mut *slot.path.get() };
                buf[..bytes.len()].copy_from_slice(bytes);
                buf[bytes.len()] = 0;
                slot.state.store(PUBLISHED, Ordering::Release);
                return Some(i);
            }
        }
        None
    }

    /// Withdraws slot `i` (before the file is renamed or removed). A slot a handler has
    /// claimed (UNLINKING) stays claimed: `publish` only takes FREE slots, so its buffer
    /// never changes under the handler, and the process is ending anyway.
    pub(crate) fn clear(i: usize) {
        let _ =
            TABLE[i]
                .state
                .compare_exchange(PUBLISHED, FREE, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Removes every published temp file. Async-signal-safe; the slots stay claimed (the
    /// caller ends the process).
    pub(crate) fn unlink_all() {
        for slot in &TABLE {
            if slot
                .state
                .compare_exchange(PUBLISHED, UNLINKING, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                // (Only Linux has the shutdown hook that calls this.)
                #[cfg(target_os = "linux")]
                // SAFETY: UNLINKING gives this thread the buffer, which holds a
                // NUL-terminated path (see `publish`); unlink is async-signal-safe.
                unsafe {
                    nix::libc::unlink((*slot.path.get()).as_ptr().cast());
                }
            }
        }
    }

    /// Test support: frees slots left UNLINKING by a test that called `unlink_all`.
    #[cfg(test)]
    pub(crate) fn reset_for_test() {
        for slot in &TABLE {
            let _ =
                slot.state
                    .compare_exchange(UNLINKING, FREE, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shutdown hook's second-signal path: the temp file of a write in progress is
    /// removed, and the write then fails without a target.
    #[test]
    fn a_signal_mid_write_removes_the_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpu.pb.gz");
        let err = write_atomic(&path, |w| {
            w.write_all(&[1u8; 10_000])?;
            let temps: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
            assert_eq!(temps.len(), 1, "one temp file while writing");
            inflight::unlink_all();
            Ok(())
        })
        .unwrap_err();
        inflight::reset_for_test();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0, "nothing left");
    }

    #[test]
    #[cfg(target_os = "linux")] // mkfifo through nix, a Linux-only dependency
    fn devices_and_fifos_are_refused_and_left_alone() {
        let dev = Path::new("/dev/null");
        let before = fs::metadata(dev).unwrap();
        let err = write_atomic(dev, |w| w.write_all(b"x")).unwrap_err();
        assert!(
            err.to_string()
                .contains("not a regular file (a character device)"),
            "{err}"
        );
        let err = prepare_file(dev).unwrap_err();
        assert!(err.to_string().contains("/dev/null"), "{err}");
        use std::os::unix::fs::{FileTypeExt, MetadataExt};
        let after = fs::metadata(dev).unwrap();
        assert!(after.file_type().is_char_device());
        assert_eq!(before.rdev(), after.rdev());

        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("cpu.pb.gz");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let err = write_atomic(&fifo, |w| w.write_all(b"x")).unwrap_err();
        assert!(err.to_string().contains("a FIFO"), "{err}");
        assert!(prepare_target_in(dir.path(), "cpu.pb.gz").is_err());
        assert!(fs::metadata(&fifo).unwrap().file_type().is_fifo());
        // A link to a device is refused too; a link to a regular file is followed.
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/null", &link).unwrap();
        assert!(write_atomic(&link, |w| w.write_all(b"x")).is_err());
        let real = dir.path().join("real.pb.gz");
        fs::write(&real, b"old").unwrap();
        let link2 = dir.path().join("link2");
        std::os::unix::fs::symlink(&real, &link2).unwrap();
        write_atomic(&link2, |w| w.write_all(b"new")).unwrap();
        assert_eq!(fs::read(&real).unwrap(), b"new");
        assert!(
            fs::symlink_metadata(&link2)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }

    #[test]
    fn bad_file_names_fail_at_build_time() {
        let dir = tempfile::tempdir().unwrap();
        for bad in [
            PathBuf::from(""),
            dir.path().join("a\0b"),
            dir.path().join("x".repeat(250)),
            dir.path().join(".."),
        ] {
            assert!(prepare_file(&bad).is_err(), "{bad:?} accepted");
        }
        // 240 bytes: the temp name (12 more) still fits in 255.
        prepare_file(&dir.path().join("x".repeat(240))).unwrap();
        assert_eq!(
            fs::read_dir(dir.path()).unwrap().count(),
            0,
            "probe left behind"
        );
    }

    #[cfg(unix)]
    #[test]
    fn the_default_directory_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let d = temp_dir().unwrap();
        let mode = fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        fs::remove_dir(&d).unwrap();
        assert_eq!(mode, 0o700);
    }

    /// Profiles get the permissions `File::create` gives (0666 less the umask), not
    /// tempfile's private 0600.
    #[cfg(unix)]
    #[test]
    fn written_files_have_the_usual_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("cpu.pb.gz");
        write_atomic(&ours, |w| w.write_all(b"x")).unwrap();
        let usual = dir.path().join("usual");
        fs::File::create(&usual).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&ours), mode(&usual));
    }

    #[test]
    fn failed_write_leaves_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cpu.pb.gz");
        fs::write(&path, b"earlier profile").unwrap();
        let err = write_atomic(&path, |w| {
            w.write_all(&[7u8; 100_000])?;
            Err(io::Error::from_raw_os_error(enospc()))
        })
        .unwrap_err();
        match &err {
            Error::Io { path: p, source } => {
                assert_eq!(p, &path);
                assert_eq!(source.raw_os_error(), Some(enospc()));
            }
            other => panic!("unexpected error {other:?}"),
        }
        assert!(err.to_string().contains("cpu.pb.gz"), "{err}");
        assert_eq!(fs::read(&path).unwrap(), b"earlier profile");
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "temp file left behind: {names:?}");
    }

    fn enospc() -> i32 {
        28 // ENOSPC on every Linux architecture
    }

    #[test]
    fn successful_write_replaces_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.pb.gz");
        fs::write(&path, b"old").unwrap();
        write_atomic(&path, |w| w.write_all(b"new")).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"new");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn dir_that_is_a_file_is_rejected() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let err = prepare_dir(f.path()).unwrap_err();
        assert!(
            matches!(&err, Error::Io { path, source } if path == f.path() && source.kind() == io::ErrorKind::NotADirectory)
        );
    }

    #[test]
    fn relative_file_without_parent_uses_current_dir() {
        assert_eq!(parent_of(Path::new("cpu.pb.gz")), Path::new("."));
        assert_eq!(parent_of(Path::new("a/cpu.pb.gz")), Path::new("a"));
    }
}
