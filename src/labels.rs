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
//! Every CPU sample also carries `thread_name` and `thread_id`, without `with`; clock
//! (wall-time) samples carry the labels too.
//!
//! # Futures
//!
//! In async code a task moves between worker threads and a closure cannot span an
//! `.await`: wrap the future instead. [`Labeled`] installs its labels for the duration of
//! each poll, on whichever thread polls it, so every sample taken while the future (or
//! anything it awaits inline) runs carries them:
//!
//! ```
//! use profile::labels::LabelExt;
//!
//! async fn handle_request() { /* ... */ }
//! # async fn serve() {
//! handle_request().with_labels(&[("endpoint", "/api/users")]).await;
//! # }
//! ```
//!
//! Nested sets merge as Go's `pprof.Do`: a labelled future polled inside another (or
//! inside [`with`]) has the outer labels plus its own, its own winning for a shared key.
//! A future spawned onto the runtime (`tokio::spawn`) is polled by the runtime, not by
//! its parent: wrap it too. The cost is a few thread-local reads and writes per poll (see
//! `docs/performance.md`); no allocation after the first poll.
//!
//! How the signal handler reads them without a lock: the thread's current label set is
//! an `Arc` published through a thread-local pointer. The handler (on the same thread)
//! takes a reference with one atomic increment; the set is freed by whoever drops the
//! last reference, on an ordinary thread. `with` publishes a new set before the closure
//! runs and restores the previous one before releasing its own reference, so the pointer
//! the handler sees is always alive.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{Ordering, compiler_fence};
use std::task::{Context, Poll};

/// A label set: sorted by key, keys unique. A sized type, so that a pointer to it is one
/// word: the signal handler must never see half of a pointer being stored.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct LabelSet(pub Vec<(String, String)>);

thread_local! {
    /// This thread's current labels (from `Arc::into_raw`), null for none. Const-initialized
    /// and without a destructor, so the signal handler may read it.
    static CURRENT: Cell<*const LabelSet> = const { Cell::new(std::ptr::null()) };
}

/// `outer` (null for none) with `labels` added, a key already in `outer` taking the new
/// value.
fn merged(outer: *const LabelSet, labels: impl IntoIterator<Item = (String, String)>) -> LabelSet {
    let mut merged: Vec<(String, String)> = current_of(outer);
    for (k, v) in labels {
        match merged.binary_search_by(|(key, _)| key.as_str().cmp(&k)) {
            Ok(i) => merged[i].1 = v,
            Err(i) => merged.insert(i, (k, v)),
        }
    }
    LabelSet(merged)
}

/// Restores this thread's previous label pointer when dropped (also on a panic).
struct Restore(*const LabelSet);

impl Drop for Restore {
    fn drop(&mut self) {
        compiler_fence(Ordering::SeqCst);
        CURRENT.with(|c| c.set(self.0));
        compiler_fence(Ordering::SeqCst);
    }
}

/// Publishes `set` as this thread's labels until the returned value drops. The caller
/// keeps `set` alive at least that long.
fn publish(set: *const LabelSet) -> Restore {
    let previous = CURRENT.with(Cell::get);
    // Published only once the set is complete; a signal handler on this thread sees
    // either the previous set or this one.
    compiler_fence(Ordering::SeqCst);
    CURRENT.with(|c| c.set(set));
    compiler_fence(Ordering::SeqCst);
    Restore(previous)
}

/// A future whose polls run with a label set (see [the module docs](self#futures)). Made
/// by [`LabelExt::with_labels`] or [`labeled`].
#[derive(Debug)]
#[must_use = "futures do nothing unless polled"]
pub struct Labeled<F> {
    inner: F,
    /// This future's own labels.
    own: Arc<LabelSet>,
    /// The last merge with an enclosing set: (that set, it plus ours). Holding the outer
    /// set keeps its address from being reused, so a pointer comparison identifies it.
    merged: Option<(Arc<LabelSet>, Arc<LabelSet>)>,
}

/// Wraps `future` so that each of its polls runs with `labels` added to the polling
/// thread's labels. The same as [`LabelExt::with_labels`].
pub fn labeled<F: Future>(labels: &[(&str, &str)], future: F) -> Labeled<F> {
    let own = merged(
        std::ptr::null(),
        labels.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())),
    );
    Labeled {
        inner: future,
        own: Arc::new(own),
        merged: None,
    }
}

/// `.with_labels(...)` on every future.
pub trait LabelExt: Future + Sized {
    /// Runs each poll of this future with `labels` added to the polling thread's labels
    /// (Go's `pprof.Do` for a future): CPU and clock samples taken meanwhile carry them.
    fn with_labels(self, labels: &[(&str, &str)]) -> Labeled<Self> {
        labeled(labels, self)
    }
}

impl<F: Future> LabelExt for F {}

impl<F> Labeled<F> {
    /// This future's own labels (without any enclosing set's), sorted by key.
    pub fn labels(&self) -> &[(String, String)] {
        &self.own.0
    }

    /// The wrapped future.
    pub fn into_inner(self) -> F {
        self.inner
    }
}

impl<F: Future> Future for Labeled<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        // SAFETY: `inner` is structurally pinned (never moved out while pinned: only
        // `into_inner`, which takes `self` by value, i.e. unpinned, moves it); the other
        // fields are not pinned and are only replaced, never moved out of.
        let this = unsafe { self.get_unchecked_mut() };
        let outer = CURRENT.with(Cell::get);
        let set = if outer.is_null() {
            Arc::as_ptr(&this.own)
        } else {
            match &this.merged {
                Some((o, m)) if Arc::as_ptr(o) == outer => Arc::as_ptr(m),
                _ => {
                    // SAFETY: a non-null CURRENT is live while this poll runs (it belongs
                    // to an enclosing `with` or poll on this thread's stack): one more
                    // reference, taken over by the Arc.
                    let o = unsafe {
                        Arc::increment_strong_count(outer);
                        Arc::from_raw(outer)
                    };
                    let m = Arc::new(merged(outer, this.own.0.iter().cloned()));
                    let p = Arc::as_ptr(&m);
                    this.merged = Some((o, m));
                    p
                }
            }
        };
        // `set` is owned by `this` (own or merged), which outlives the poll.
        let _restore = publish(set);
        // SAFETY: see above; `inner` stays where it is.
        unsafe { Pin::new_unchecked(&mut this.inner) }.poll(cx)
    }
}

/// Runs `f` with `labels` added to this thread's labels; CPU samples taken meanwhile on
/// this thread carry them. A key already set by an enclosing `with` takes the new value.
pub fn with<R>(labels: &[(&str, &str)], f: impl FnOnce() -> R) -> R {
    let set = Arc::new(merged(
        CURRENT.with(Cell::get),
        labels.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())),
    ));
    // Restores the previous set before `set` is released (declared after it, so dropped
    // first, also when `f` panics); the handler holds its own references.
    let _restore = publish(Arc::as_ptr(&set));
    f()
}

/// A set published by [`enter`] until [`leave`]: for scopes that open and close in
/// two calls (a `tracing` span's enter and exit) rather than around a closure.
#[cfg_attr(not(feature = "push-tracing"), allow(dead_code))]
pub(crate) struct Entered {
    /// Keeps the published set alive while it is this thread's.
    set: Arc<LabelSet>,
    previous: *const LabelSet,
}

/// Publishes this thread's labels plus `labels` (merged as [`with`]) until [`leave`].
#[cfg_attr(not(feature = "push-tracing"), allow(dead_code))]
pub(crate) fn enter(labels: &[(String, String)]) -> Entered {
    let set = Arc::new(merged(CURRENT.with(Cell::get), labels.iter().cloned()));
    let restore = publish(Arc::as_ptr(&set));
    let previous = restore.0;
    std::mem::forget(restore); // restored by `leave`
    Entered { set, previous }
}

/// Ends an [`enter`]: the labels from before it are this thread's again. Calls must nest
/// (the latest `enter` left first), as span enters and exits on one thread do.
#[cfg_attr(not(feature = "push-tracing"), allow(dead_code))]
pub(crate) fn leave(entered: Entered) {
    drop(Restore(entered.previous));
    // The signal handler holds its own references: the set may go now.
    drop(entered.set);
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

    /// Polls `f` to completion on this thread (a no-op waker: the futures here never
    /// wait on anything but themselves).
    fn block_on<F: Future>(f: F) -> F::Output {
        let mut f = std::pin::pin!(f);
        let mut cx = Context::from_waker(std::task::Waker::noop());
        loop {
            if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
                return v;
            }
        }
    }

    /// Pending once, then ready: a future that is polled twice.
    struct YieldOnce(bool);
    impl Future for YieldOnce {
        type Output = ();
        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            if self.0 {
                Poll::Ready(())
            } else {
                self.0 = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    #[test]
    fn labeled_futures_carry_labels_in_every_poll_and_merge_when_nested() {
        let seen = block_on(
            async {
                let a = current();
                YieldOnce(false).await;
                let b = current();
                let inner = async { current() }
                    .with_labels(&[("endpoint", "/inner"), ("db", "main")])
                    .await;
                (a, b, inner)
            }
            .with_labels(&[("endpoint", "/outer"), ("tenant", "x")]),
        );
        let outer = vec![
            ("endpoint".to_string(), "/outer".to_string()),
            ("tenant".to_string(), "x".to_string()),
        ];
        assert_eq!(seen.0, outer);
        assert_eq!(seen.1, outer, "the second poll has the labels too");
        assert_eq!(
            seen.2,
            vec![
                ("db".to_string(), "main".to_string()),
                ("endpoint".to_string(), "/inner".to_string()),
                ("tenant".to_string(), "x".to_string()),
            ],
            "nested: outer plus inner, inner wins"
        );
        assert!(current().is_empty(), "nothing left after the poll");
        // Inside a closure's labels, a future's merge with them.
        let got = with(&[("k", "outer")], || {
            block_on(async { current() }.with_labels(&[("j", "inner")]))
        });
        assert_eq!(
            got,
            vec![
                ("j".to_string(), "inner".to_string()),
                ("k".to_string(), "outer".to_string())
            ]
        );
    }

    #[test]
    fn a_labeled_poll_allocates_nothing_after_the_first() {
        let mut f = std::pin::pin!(labeled(&[("k", "v")], async {
            loop {
                YieldOnce(false).await;
            }
        }));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let _ = f.as_mut().poll(&mut cx);
        let before = crate::test_alloc::allocations();
        for _ in 0..100 {
            let _ = f.as_mut().poll(&mut cx);
        }
        assert_eq!(crate::test_alloc::allocations(), before);
        // Nested in a closure's set: the merge is made once, then reused.
        with(&[("outer", "1")], || {
            let _ = f.as_mut().poll(&mut cx);
            let before = crate::test_alloc::allocations();
            for _ in 0..100 {
                let _ = f.as_mut().poll(&mut cx);
            }
            assert_eq!(crate::test_alloc::allocations(), before);
        });
    }

    #[test]
    fn a_panicking_poll_restores_the_labels() {
        let r = std::panic::catch_unwind(|| {
            block_on(async { panic!("boom") }.with_labels(&[("k", "v")]))
        });
        assert!(r.is_err());
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
