//! Small helpers for the signal handlers and the threads that drive them.
//!
//! # Layering rule
//!
//! Everything here may run in a signal handler: no allocation, no lock, no formatting.
//! `clock_gettime` is async-signal-safe (POSIX); the rest is arithmetic.

use nix::libc;

/// The time of `clock` in nanoseconds (0 if it cannot be read).
pub(crate) fn clock_nanos(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec passed. It cannot fail for the clocks used
    // here with a valid pointer (the timespec stays zero if it did).
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// The monotonic clock, in nanoseconds (vDSO: no system call).
pub(crate) fn monotonic_nanos() -> u64 {
    clock_nanos(libc::CLOCK_MONOTONIC)
}

/// The calling thread's CPU time, in nanoseconds (a system call: thread CPU clocks have
/// no vDSO path).
pub(crate) fn thread_cpu_nanos() -> u64 {
    clock_nanos(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// `nanos` as a `timespec`.
pub(crate) fn timespec(nanos: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (nanos / 1_000_000_000) as libc::time_t,
        tv_nsec: (nanos % 1_000_000_000) as libc::c_long,
    }
}

/// The next number of a xorshift64 sequence (`state` must not be zero). Statistical
/// quality is ample for jittering sampling times; it is not for anything else.
pub(crate) fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}
