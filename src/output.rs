//! Where profiles go: validating the output path before anything starts, and writing a
//! file completely or not at all (a temp file beside the target, fsync, then rename).

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

/// Checks that `file` can be written: not a directory, and its directory writable.
pub(crate) fn prepare_file(file: &Path) -> Result<(), Error> {
    if file.is_dir() {
        return Err(Error::io(
            file,
            io::Error::new(
                io::ErrorKind::IsADirectory,
                "is a directory; give .file() a file name or use .path()",
            ),
        ));
    }
    prepare_dir(parent_of(file))
}

fn parent_of(file: &Path) -> &Path {
    match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A fresh directory for profiles, kept after the process exits (pkg/profile's default).
pub(crate) fn temp_dir() -> Result<PathBuf, Error> {
    tempfile::Builder::new()
        .prefix("profile")
        .tempdir()
        .map(tempfile::TempDir::keep)
        .map_err(|e| Error::io(std::env::temp_dir(), e))
}

/// Writes `path` atomically: `write` fills a temp file in the same directory, which is
/// flushed, synced and renamed over `path` only if everything succeeded. On any error the
/// temp file is removed and whatever was at `path` before is untouched.
pub(crate) fn write_atomic(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(), Error> {
    let dir = parent_of(path);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.");
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(".tmp");
    // As os.Create and File::create: 0666 less the umask (tempfile's default is 0600).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(fs::Permissions::from_mode(0o666));
    }
    let tmp = builder.tempfile_in(dir).map_err(|e| Error::io(path, e))?;
    let result = (|| {
        let mut w = BufWriter::new(tmp.as_file());
        write(&mut w)?;
        w.flush()?;
        drop(w);
        tmp.as_file().sync_all()
    })();
    result.map_err(|e| Error::io(path, e))?;
    tmp.persist(path).map_err(|e| Error::io(path, e.error))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
