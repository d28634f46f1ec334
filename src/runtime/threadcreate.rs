//! Thread creation: the stacks that created this process's threads (Go's
//! `threadcreate` profile), for programs whose thread count explodes. Cargo feature
//! `threadcreate`; the default build has none of it.
//!
//! ```no_run
//! # #[cfg(feature = "threadcreate")] {
//! std::thread::spawn(|| {}).join().unwrap();
//! let profile = profile::runtime::threadcreate::profile()?;
//! assert!(profile.total("threadcreate") >= 1);
//! # }
//! # Ok::<(), profile::Error>(())
//! ```
//!
//! # How
//!
//! With the feature on, this crate defines a `pthread_create` symbol. The static linker
//! binds the executable's own calls — `std::thread::spawn` and `Builder::spawn` of every
//! Rust crate, and C code linked statically — to it; it records the caller's stack (one
//! libgcc unwind, a hash-table update under a lock of its own) and calls glibc's
//! `pthread_create`, found with `dlsym(RTLD_NEXT)`. Recording starts with the process
//! and the profile is cumulative, as in Go.
//!
//! # Limits
//!
//! - Threads created by shared libraries (a C library's worker pool) are not seen: their
//!   calls bind to libc's symbol, not to the executable's.
//! - Threads created with a raw `clone` are not seen.
//! - A statically linked executable has no `RTLD_NEXT`: thread creation then fails with
//!   `EAGAIN` (so do not enable the feature there).
//! - Each creation costs an unwind (a few microseconds), small beside creating a thread.
//! - At most 4096 distinct creation stacks are kept; creations from more are counted in a
//!   profile comment.

use crate::{Error, Profile};

/// Checks that thread creations can be recorded on this platform.
pub(crate) fn check() -> Result<(), Error> {
    crate::sys::threadcreate_supported()
}

/// The thread-creation table's state.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ThreadCreateStats {
    /// Distinct creation stacks recorded.
    pub stacks: usize,
    /// At most this many stacks; creations from further ones are counted, not kept.
    pub max_stacks: usize,
    /// Creations not recorded because the table was full (also noted in the profile).
    pub dropped: u64,
}

/// The thread-creation table's state (cheap: a count, no stack copied).
pub fn stats() -> ThreadCreateStats {
    let (stacks, dropped, max_stacks) = crate::sys::threadcreate_state();
    ThreadCreateStats {
        stacks,
        max_stacks,
        dropped,
    }
}

/// The `threadcreate/count` profile: one sample per creation stack, the number of
/// threads it created since the process started.
///
/// Errors: [`Error::Unsupported`] off Linux.
pub fn profile() -> Result<Profile, Error> {
    check()?;
    crate::sys::threadcreate_profile()
}
