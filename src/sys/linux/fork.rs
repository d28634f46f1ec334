//! `fork()` safety: `pthread_atfork` handlers that keep the locks on the allocation and
//! lock paths consistent in a child.
//!
//! A child of a multi-threaded process has one thread, the one that called `fork`; a
//! lock another thread held at that moment stays held forever in the child, whose first
//! allocation (heap sampler) or contended lock (contention tables) would then spin or
//! park for good. So, as glibc does for malloc's arenas, the forking thread takes those
//! locks just before the fork (`prepare`) and releases them on both sides afterwards;
//! the tables they guard are consistent in the child, which keeps recording into them.
//!
//! Locks held for long (the shared symbolizer, the capture core) are not taken around a
//! fork: a fork would wait for a symbolization. A child finds them held by a thread it
//! does not have and resets them instead (`child` only): what they guarded may be half
//! updated, so it is abandoned (leaked, never read or dropped) and built afresh.
//!
//! Kinds register their handlers here (`sys` calls nothing above it); each slot has a
//! fixed place so the locks are always taken in the same order, outermost first, and
//! released in reverse.
//!
//! # Layering rule
//!
//! The handlers run inside `fork` (in the child, before it returns): they must not
//! allocate while holding a lock the allocator path takes and must not block on anything
//! but the locks they exist to take. Registration runs on ordinary threads.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicPtr, Ordering};

use nix::libc;

/// One kind's handlers.
pub(crate) struct Handlers {
    /// Before the fork, on the forking thread: take the locks.
    pub prepare: fn(),
    /// After the fork, in the parent: release them.
    pub parent: fn(),
    /// After the fork, in the child (its only thread): release them.
    pub child: fn(),
}

/// Where a kind's handlers go; the order is the lock order (outermost first).
#[derive(Clone, Copy)]
#[cfg_attr(not(feature = "threadcreate"), allow(dead_code))]
pub(crate) enum Slot {
    /// The loader's list of objects (`dl_iterate_phdr`): no thread of ours is inside it
    /// at the fork (glibc does not reset its lock in the child). First: it must wait for
    /// threads that may allocate and take the locks below.
    Objects = 0,
    /// The shared symbolizer (reset in a child).
    Symbolizer = 1,
    /// The stack-capture core (reset in a child).
    Capture = 2,
    /// The shared walker's module list and publisher (reset in a child).
    Stack = 3,
    /// The shutdown hook (its dispositions restored in a child).
    Hook = 4,
    /// The contention tables (`profile::sync`): a lock's slow path takes them, and may
    /// allocate under them.
    Contention = 5,
    /// The thread-creation table.
    ThreadCreate = 6,
    /// The heap sampler's spin lock: innermost, every allocation may take it.
    Heap = 7,
}

const SLOTS: usize = 8;

static HANDLERS: [AtomicPtr<Handlers>; SLOTS] =
    [const { AtomicPtr::new(std::ptr::null_mut()) }; SLOTS];

/// Registers `handlers` in `slot` (idempotent; the first registration of a slot wins).
/// Returns the errno if `pthread_atfork` fails (only for lack of memory).
pub(crate) fn register(slot: Slot, handlers: &'static Handlers) -> Result<(), i32> {
    static RESULT: OnceLock<i32> = OnceLock::new();
    // SAFETY: the three functions are `extern "C"`, take no arguments and live for the
    // process.
    let rc = *RESULT
        .get_or_init(|| unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) });
    if rc != 0 {
        return Err(rc);
    }
    let _ = HANDLERS[slot as usize].compare_exchange(
        std::ptr::null_mut(),
        handlers as *const Handlers as *mut Handlers,
        Ordering::AcqRel,
        Ordering::Acquire,
    );
    Ok(())
}

/// A handler that does nothing (for a slot that only resets in the child).
pub(crate) fn nothing() {}

/// Frees a `parking_lot` mutex that a thread of the parent held at the fork; call only
/// from a `child` handler (the child's one thread is the forking one, which held none of
/// this crate's locks). Returns whether it was held, i.e. whether what it guards may be
/// half updated.
pub(crate) fn release_in_child<T: ?Sized>(m: &parking_lot::Mutex<T>) -> bool {
    if !m.is_locked() {
        return false;
    }
    // SAFETY: the holder does not exist in the child, so no guard will ever unlock it;
    // the caller treats the contents as abandoned.
    unsafe { m.force_unlock(lock_api::GuardNoSend::new()) };
    true
}

fn each(forward: bool, pick: fn(&Handlers) -> fn()) {
    let mut call = |i: usize| {
        let p = HANDLERS[i].load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: only `&'static Handlers` are stored.
            pick(unsafe { &*p })();
        }
    };
    if forward {
        (0..SLOTS).for_each(&mut call);
    } else {
        (0..SLOTS).rev().for_each(&mut call);
    }
}

extern "C" fn prepare() {
    each(true, |h| h.prepare);
}

extern "C" fn parent() {
    each(false, |h| h.parent);
}

extern "C" fn child() {
    each(false, |h| h.child);
}
