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

use crate::profile::ValueType;
use crate::profile::builder::{ProfileBuilder, Resolve, now_nanos};
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
    let (stacks, dropped) = crate::sys::threadcreate_stacks();
    let (_, _, max_stacks) = crate::sys::threadcreate_state();
    crate::sys::with_symbolizer("thread-creation profiles", |symbolizer| {
        build(&stacks, dropped, max_stacks, symbolizer)
    })
}

/// The profile from the table: this crate's and the unwinder's frames (and
/// `pthread_create` itself) cut from the top of each stack.
fn build(
    stacks: &[(Vec<u64>, u64)],
    dropped: u64,
    max_stacks: usize,
    symbolizer: &mut dyn Resolve,
) -> Result<Profile, Error> {
    let internal = |name: &str| {
        name.starts_with("profile::")
            || name.starts_with("<profile::")
            || name.starts_with("backtrace::")
            || name.starts_with("_Unwind_")
            || name == "pthread_create"
    };
    let trimmed: Vec<(Vec<u64>, u64)> = stacks
        .iter()
        .map(|(stack, n)| {
            let cut = crate::profile::trim::leading_internal(symbolizer, stack, internal);
            (stack[cut..].to_vec(), *n)
        })
        .collect();
    let mut b = ProfileBuilder::new(symbolizer, vec![ValueType::new("threadcreate", "count")]);
    for (stack, n) in &trimmed {
        b.add(stack, false, &[*n as i64], Vec::new());
    }
    let header = b.header();
    header.period_type = Some(ValueType::new("threadcreate", "count"));
    header.period = 1;
    header.time_nanos = now_nanos();
    if dropped > 0 {
        header.comments.push(format!(
            "{dropped} thread creations not recorded: more than {max_stacks} distinct stacks"
        ));
    }
    Ok(b.finish())
}
