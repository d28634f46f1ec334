//! Recording of lock contention: the mutex profile (delay charged to the code that held a
//! contended lock and released it) and the block profile (time spent waiting, charged to
//! the waiter), with Go's sampling and scaling.
//!
//! Only contended paths (a lock that was not free, a condvar wait, `blocking`) come here:
//! the uncontended lock/unlock path never does. Recording takes an ordinary lock (not an
//! instrumented one) and may allocate; nothing here runs in a signal handler or in the
//! allocator.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// Record 1 in N contention events in the mutex profile (0 = off).
static MUTEX_FRACTION: AtomicU64 = AtomicU64::new(0);
/// Record a wait of d ns with probability d / rate in the block profile (0 = off).
static BLOCK_RATE: AtomicU64 = AtomicU64::new(0);
/// Either of the two is on: contended waits must be timed. One load for the lock path.
static TIMED: AtomicBool = AtomicBool::new(false);

fn update_timed() {
    let on = MUTEX_FRACTION.load(Ordering::SeqCst) != 0 || BLOCK_RATE.load(Ordering::SeqCst) != 0;
    TIMED.store(on, Ordering::SeqCst);
}

/// Deepest stack recorded.
const MAX_DEPTH: usize = crate::sys::stack::MAX_DEPTH;

/// `fork()`: the forking thread holds both tables across the fork (in the order `record`
/// would take them), so a child's contended locks never wait for a thread that does not
/// exist there (see `sys::fork`).
static FORK_HANDLERS: crate::sys::fork::Handlers = crate::sys::fork::Handlers {
    prepare: || {
        std::mem::forget(table(Which::Mutex).lock());
        std::mem::forget(table(Which::Block).lock());
    },
    parent: fork_release,
    child: fork_release,
};

fn fork_release() {
    // SAFETY: `prepare` locked both on this thread and forgot the guards; this releases
    // exactly those locks, in reverse order.
    unsafe {
        table(Which::Block).force_unlock(lock_api::GuardNoSend::new());
        table(Which::Mutex).force_unlock(lock_api::GuardNoSend::new());
    }
}

/// Recording was turned on: the fork handlers, and a stack walker for the objects loaded
/// now (the cached-rule walk; libgcc's unwinder is ~10x slower per frame, which made
/// fully recorded contention ~100x slower than parking_lot).
fn prepare_recording() {
    let _ = crate::sys::fork::register(crate::sys::fork::Slot::Contention, &FORK_HANDLERS);
    crate::sys::stack::prepare_here();
}

/// Distinct stacks kept per profile; events on further stacks are counted as dropped.
pub(crate) const MAX_STACKS: usize = 16 * 1024;

/// Which profile an event goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Which {
    Mutex,
    Block,
}

/// Accumulated values of one stack: contentions (fractional after unbiasing) and delay.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Values {
    pub count: f64,
    pub delay: f64,
}

#[derive(Default)]
pub(crate) struct Table {
    pub stacks: HashMap<Vec<u64>, Values>,
    pub dropped: u64,
}

fn table(which: Which) -> &'static parking_lot::Mutex<Table> {
    static MUTEX: OnceLock<parking_lot::Mutex<Table>> = OnceLock::new();
    static BLOCK: OnceLock<parking_lot::Mutex<Table>> = OnceLock::new();
    match which {
        Which::Mutex => MUTEX.get_or_init(Default::default),
        Which::Block => BLOCK.get_or_init(Default::default),
    }
}

/// Nanoseconds on a monotonic clock (since the first call).
pub(crate) fn now_ns() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Whether either profile wants contended waits timed.
#[inline]
pub(crate) fn enabled() -> bool {
    TIMED.load(Ordering::Relaxed)
}

pub(crate) fn set_mutex_fraction(n: u64) -> u64 {
    if n != 0 {
        prepare_recording();
    }
    let previous = MUTEX_FRACTION.swap(n, Ordering::SeqCst);
    update_timed();
    previous
}

/// Sets the mutex fraction or the block rate, whichever `which` names; returns the
/// previous value.
pub(crate) fn set(which: Which, value: u64) -> u64 {
    match which {
        Which::Mutex => set_mutex_fraction(value),
        Which::Block => set_block_rate(value),
    }
}

pub(crate) fn mutex_fraction() -> u64 {
    MUTEX_FRACTION.load(Ordering::Relaxed)
}

pub(crate) fn set_block_rate(ns: u64) -> u64 {
    if ns != 0 {
        prepare_recording();
    }
    let previous = BLOCK_RATE.swap(ns, Ordering::SeqCst);
    update_timed();
    previous
}

pub(crate) fn block_rate() -> u64 {
    BLOCK_RATE.load(Ordering::Relaxed)
}

thread_local! {
    static RNG: Cell<u64> = const { Cell::new(0) };
}

/// A per-thread xorshift random number.
fn random() -> u64 {
    let mut x = RNG.get();
    if x == 0 {
        x = now_ns().wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    }
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    RNG.set(x);
    x.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// A releaser's event: waiters were delayed `delay` ns while the caller held the lock.
/// Go samples 1 in `fraction` and scales count and delay by `fraction`.
#[inline(never)]
pub(crate) fn mutex_event(delay: u64) {
    let fraction = MUTEX_FRACTION.load(Ordering::Relaxed);
    if fraction == 0 || delay == 0 || (fraction > 1 && !random().is_multiple_of(fraction)) {
        return;
    }
    record(
        Which::Mutex,
        Values {
            count: fraction as f64,
            delay: fraction as f64 * delay as f64,
        },
    );
}

/// A waiter's event: the caller waited `delay` ns. Go records a wait of d with
/// probability d / rate (always when d ≥ rate) and scales a sampled short wait to
/// (rate / d contentions, rate ns).
#[inline(never)]
pub(crate) fn block_event(delay: u64) {
    let rate = BLOCK_RATE.load(Ordering::Relaxed);
    if rate == 0 || delay == 0 {
        return;
    }
    let values = if delay >= rate {
        Values {
            count: 1.0,
            delay: delay as f64,
        }
    } else {
        if random() % rate >= delay {
            return;
        }
        Values {
            count: rate as f64 / delay as f64,
            delay: rate as f64,
        }
    };
    record(Which::Block, values);
}

fn record(which: Which, values: Values) {
    let mut stack = [0u64; MAX_DEPTH];
    let (n, _) = crate::sys::stack::capture_here(&mut stack);
    let mut t = table(which).lock();
    let len = t.stacks.len();
    match t.stacks.get_mut(&stack[..n]) {
        Some(v) => {
            v.count += values.count;
            v.delay += values.delay;
        }
        None if len < MAX_STACKS => {
            t.stacks.insert(stack[..n].to_vec(), values);
        }
        None => t.dropped += 1,
    }
}

/// (distinct stacks, events dropped) of a profile's table.
pub(crate) fn table_state(which: Which) -> (usize, u64) {
    let t = table(which).lock();
    (t.stacks.len(), t.dropped)
}

/// A copy of a profile's stacks and values.
pub(crate) fn snapshot(which: Which) -> (Vec<(Vec<u64>, Values)>, u64) {
    let t = table(which).lock();
    (
        t.stacks.iter().map(|(k, v)| (k.clone(), *v)).collect(),
        t.dropped,
    )
}

/// `end` minus `base`, stack by stack (for a guard's window or a delta profile).
pub(crate) fn delta(
    end: Vec<(Vec<u64>, Values)>,
    base: &[(Vec<u64>, Values)],
) -> Vec<(Vec<u64>, Values)> {
    let base: HashMap<&[u64], Values> = base.iter().map(|(k, v)| (k.as_slice(), *v)).collect();
    end.into_iter()
        .filter_map(|(k, v)| {
            let b = base.get(k.as_slice()).copied().unwrap_or_default();
            let d = Values {
                count: v.count - b.count,
                delay: v.delay - b.delay,
            };
            (d.count > 0.0 || d.delay > 0.0).then_some((k, d))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn total(which: Which) -> Values {
        let (stacks, _) = snapshot(which);
        stacks.iter().fold(Values::default(), |a, (_, v)| Values {
            count: a.count + v.count,
            delay: a.delay + v.delay,
        })
    }

    #[test]
    fn sampling_is_scaled_to_unbiased_totals() {
        // Block: rate 1000 ns. Waits at or above the rate are recorded as they are; a
        // 250 ns wait is kept with probability 1/4 as (4 contentions, 1000 ns).
        let before = total(Which::Block);
        let previous = set_block_rate(1000);
        block_event(5000);
        let after = total(Which::Block);
        assert_eq!(after.count - before.count, 1.0);
        assert_eq!(after.delay - before.delay, 5000.0);
        for _ in 0..20_000 {
            block_event(250);
        }
        let end = total(Which::Block);
        set_block_rate(previous);
        let (count, delay) = (end.count - after.count, end.delay - after.delay);
        // Expected 20 000 contentions and 5 ms; ~5 000 samples: 1.2% noise, 5% allowed.
        assert!((count / 20_000.0 - 1.0).abs() < 0.05, "{count}");
        assert!((delay / 5_000_000.0 - 1.0).abs() < 0.05, "{delay}");

        // Mutex: 1 in 4 events, each scaled by 4.
        let before = total(Which::Mutex);
        let previous = set_mutex_fraction(4);
        for _ in 0..20_000 {
            mutex_event(100);
        }
        let end = total(Which::Mutex);
        set_mutex_fraction(previous);
        let (count, delay) = (end.count - before.count, end.delay - before.delay);
        assert!((count / 20_000.0 - 1.0).abs() < 0.05, "{count}");
        assert!((delay / 2_000_000.0 - 1.0).abs() < 0.05, "{delay}");
    }

    #[test]
    fn delta_subtracts_per_stack_and_drops_unchanged() {
        let v = |c, d| Values { count: c, delay: d };
        let base = vec![(vec![1, 2], v(1.0, 10.0)), (vec![3], v(2.0, 20.0))];
        let end = vec![
            (vec![1, 2], v(3.0, 35.0)),
            (vec![3], v(2.0, 20.0)),
            (vec![4], v(1.0, 5.0)),
        ];
        let mut d = delta(end, &base);
        d.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(d, vec![(vec![1, 2], v(2.0, 25.0)), (vec![4], v(1.0, 5.0))]);
    }
}
