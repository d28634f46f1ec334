//! Profiler labels (Go's `pprof.Do`): key/value pairs attached to the CPU samples taken
//! while a closure runs on this thread.
//!
//! ```
//! # fn handle_request() {}
//! profile::labels::with(&[("endpoint", "/api/users")], || {
//!     handle_request(); // CPU samples here carry endpoint=/api/users
//! });
//! ```
//!
//! Then `go tool pprof -tagfocus endpoint=/api/users cpu.pb.gz` keeps only those samples,
//! and `-tags` lists the values. Nested calls add to (or override) the enclosing labels;
//! the labels end with the closure, also when it panics. Labels are per thread: work sent
//! to another thread carries them only if that thread calls `with` too.
//!
//! Every CPU sample also carries `thread_name` and `thread_id`, without `with`.
//!
//! How the signal handler reads them without a lock: the thread's current label set is
//! an `Arc` published through a thread-local pointer. The handler (on the same thread)
//! takes a reference with one atomic increment; the set is freed by whoever drops the
//! last reference, on an ordinary thread. `with` publishes a new set before the closure
//! runs and restores the previous one before releasing its own reference, so the pointer
//! the handler sees is always alive.

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{Ordering, compiler_fence};

/// A label set: sorted by key, keys unique. A sized type, so that a pointer to it is one
/// word: the signal handler must never see half of a pointer being stored.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct LabelSet(pub Vec<(String, String)>);

thread_local! {
    /// This thread's current labels (from `Arc::into_raw`), null for none. Const-initialized
    /// and without a destructor, so the signal handler may read it.
    static CURRENT: Cell<*const LabelSet> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with `labels` added to this thread's labels; CPU samples taken meanwhile on
/// this thread carry them. A key already set by an enclosing `with` takes the new value.
pub fn with<R>(labels: &[(&str, &str)], f: impl FnOnce() -> R) -> R {
    let previous = CURRENT.with(Cell::get);
    let mut merged: Vec<(String, String)> = current_of(previous);
    for &(k, v) in labels {
        match merged.binary_search_by(|(key, _)| key.as_str().cmp(k)) {
            Ok(i) => merged[i].1 = v.to_owned(),
            Err(i) => merged.insert(i, (k.to_owned(), v.to_owned())),
        }
    }
    let set = Arc::new(LabelSet(merged));
    let raw = Arc::into_raw(set);
    // Published only once the set is complete; a signal handler on this thread sees
    // either the previous set or this one.
    compiler_fence(Ordering::SeqCst);
    CURRENT.with(|c| c.set(raw));
    compiler_fence(Ordering::SeqCst);

    /// Restores the previous set, then releases ours (also when `f` panics).
    struct Restore {
        previous: *const LabelSet,
        ours: *const LabelSet,
    }
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|c| c.set(self.previous));
            compiler_fence(Ordering::SeqCst);
            // SAFETY: `ours` came from `Arc::into_raw` above and is released once, here;
            // the handler holds its own references (it increments before using it).
            drop(unsafe { Arc::from_raw(self.ours) });
        }
    }
    let _restore = Restore {
        previous,
        ours: raw,
    };
    f()
}

/// This thread's current labels, sorted by key.
pub fn current() -> Vec<(String, String)> {
    current_of(CURRENT.with(Cell::get))
}

fn current_of(ptr: *const LabelSet) -> Vec<(String, String)> {
    if ptr.is_null() {
        return Vec::new();
    }
    // SAFETY: a non-null CURRENT is a live set: the `with` that published it is on this
    // thread's stack and releases it only after restoring the previous pointer.
    unsafe { (*ptr).0.clone() }
}

/// For the signal handler: this thread's current label set with one more reference
/// (release it with [`release`]), or null. Does not allocate or lock.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // the Linux CPU sampler's
pub(crate) fn acquire_current() -> *const LabelSet {
    let ptr = CURRENT.with(Cell::get);
    if !ptr.is_null() {
        // SAFETY: live (see `current_of`); one atomic increment.
        unsafe { Arc::increment_strong_count(ptr) };
    }
    ptr
}

/// Takes over a reference made by [`acquire_current`] (null gives `None`). On an
/// ordinary thread: dropping the result may free the set.
///
/// # Safety
///
/// `ptr` is null or came from `acquire_current`, and is taken over once.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))] // the Linux CPU sampler's
pub(crate) unsafe fn take(ptr: *const LabelSet) -> Option<Arc<LabelSet>> {
    if ptr.is_null() {
        None
    } else {
        // SAFETY: per the contract, one reference made by acquire_current.
        Some(unsafe { Arc::from_raw(ptr) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_labels_merge_override_and_end_with_the_closure() {
        assert!(current().is_empty());
        with(&[("endpoint", "/a"), ("tenant", "x")], || {
            assert_eq!(
                current(),
                vec![
                    ("endpoint".into(), "/a".into()),
                    ("tenant".into(), "x".into())
                ]
            );
            with(&[("endpoint", "/b"), ("db", "main")], || {
                let c = current();
                assert_eq!(c.len(), 3);
                assert!(c.contains(&("endpoint".into(), "/b".into())));
                assert!(c.contains(&("db".into(), "main".into())));
            });
            assert_eq!(current()[0], ("endpoint".into(), "/a".into()));
        });
        assert!(current().is_empty());
    }

    #[test]
    fn labels_end_when_the_closure_panics() {
        let r = std::panic::catch_unwind(|| with(&[("k", "v")], || panic!("boom")));
        assert!(r.is_err());
        assert!(current().is_empty());
    }

    #[test]
    fn acquired_set_outlives_the_scope() {
        let held = with(&[("k", "v")], acquire_current);
        assert!(current().is_empty());
        // SAFETY: from acquire_current, taken once.
        let set = unsafe { take(held) }.unwrap();
        assert_eq!(set.0, vec![("k".to_string(), "v".to_string())]);
        // SAFETY: from acquire_current, taken once.
        assert!(unsafe { take(acquire_current()) }.is_none());
    }

    #[test]
    fn acquire_does_not_allocate() {
        with(&[("k", "v")], || {
            let before = crate::test_alloc::allocations();
            let p = acquire_current();
            assert_eq!(crate::test_alloc::allocations(), before);
            // SAFETY: from acquire_current, taken once.
            drop(unsafe { take(p) });
        });
    }
}
