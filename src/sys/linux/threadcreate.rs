//! Thread-creation stacks (cargo feature `threadcreate`): this crate defines
//! `pthread_create` itself. The static linker resolves the executable's calls (Rust's
//! `std::thread::spawn` and any C code linked into it) to this definition, which records
//! the caller's stack and calls glibc's `pthread_create` found with
//! `dlsym(RTLD_NEXT, ...)`.
//!
//! Limits: calls made by shared libraries bind to libc's symbol directly (the executable
//! does not export ours), so their threads are not seen; threads made with a raw `clone`
//! are not seen; a statically linked executable has no `RTLD_NEXT` (creation then fails
//! with `EAGAIN` and a message on stderr).
//!
//! Not a signal or allocator path: `pthread_create` is not async-signal-safe, so the
//! wrapper may allocate and take its own lock, which nothing it calls takes again.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use nix::libc;
use parking_lot::Mutex;

use super::stack::{MAX_DEPTH, capture_here};

/// Distinct creation stacks kept; creations from further stacks are only counted.
pub(crate) const MAX_STACKS: usize = 4096;

/// Creation stacks (leaf first) and how many threads each created.
static TABLE: Mutex<Option<HashMap<Vec<u64>, u64>>> = Mutex::new(None);
/// Creations not recorded because the table was full.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// glibc's `pthread_create`, once looked up.
static REAL: AtomicUsize = AtomicUsize::new(0);

type PthreadCreate = unsafe extern "C" fn(
    *mut libc::pthread_t,
    *const libc::pthread_attr_t,
    extern "C" fn(*mut libc::c_void) -> *mut libc::c_void,
    *mut libc::c_void,
) -> libc::c_int;

fn real() -> Option<PthreadCreate> {
    let mut f = REAL.load(Ordering::Acquire);
    if f == 0 {
        // SAFETY: dlsym with RTLD_NEXT and a NUL-terminated name; the result is checked.
        f = unsafe { libc::dlsym(libc::RTLD_NEXT, c"pthread_create".as_ptr()) } as usize;
        REAL.store(f, Ordering::Release);
    }
    // SAFETY: a non-null result of looking up `pthread_create` is that function, whose C
    // signature `PthreadCreate` spells out.
    (f != 0).then(|| unsafe { std::mem::transmute::<usize, PthreadCreate>(f) })
}

/// `fork()`: the table's lock is held across the fork (see `super::fork`), so a child's
/// first `pthread_create` does not wait for a thread that is not there.
static FORK_HANDLERS: super::fork::Handlers = super::fork::Handlers {
    prepare: || std::mem::forget(TABLE.lock()),
    parent: fork_release,
    child: fork_release,
};

fn fork_release() {
    // SAFETY: `prepare` locked TABLE on this thread and forgot the guard.
    unsafe { TABLE.force_unlock(lock_api::GuardNoSend::new()) }
}

fn record() {
    let mut stack = [0u64; MAX_DEPTH];
    let (n, _) = capture_here(&mut stack);
    let _ = super::fork::register(super::fork::Slot::ThreadCreate, &FORK_HANDLERS);
    let mut table = TABLE.lock();
    let table = table.get_or_insert_with(HashMap::new);
    if let Some(count) = table.get_mut(&stack[..n]) {
        *count += 1;
    } else if table.len() < MAX_STACKS {
        table.insert(stack[..n].to_vec(), 1);
    } else {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// The interposed `pthread_create`: records the caller's stack, then creates the thread.
///
/// # Safety
///
/// As for `pthread_create(3)`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: extern "C" fn(*mut libc::c_void) -> *mut libc::c_void,
    arg: *mut libc::c_void,
) -> libc::c_int {
    let Some(real) = real() else {
        eprintln!("profile: threadcreate: glibc's pthread_create not found (static executable?)");
        return libc::EAGAIN;
    };
    record();
    // SAFETY: the caller's arguments, passed on unchanged, per this function's contract.
    unsafe { real(thread, attr, start, arg) }
}

/// (distinct stacks, creations dropped), without copying the table.
pub(crate) fn state() -> (usize, u64) {
    let n = TABLE.lock().as_ref().map_or(0, |t| t.len());
    (n, DROPPED.load(Ordering::Relaxed))
}

/// The creation stacks recorded so far and the creations not recorded.
pub(crate) fn stacks() -> (Vec<(Vec<u64>, u64)>, u64) {
    let table = TABLE.lock();
    let stacks = table
        .as_ref()
        .map(|t| t.iter().map(|(s, &n)| (s.clone(), n)).collect())
        .unwrap_or_default();
    (stacks, DROPPED.load(Ordering::Relaxed))
}
