//! The shutdown hook: SIGINT and SIGTERM stop the running guard, its profile is written,
//! and then the signal is delivered again to whatever disposition was there before us, so
//! the process ends as that signal would have ended it (status 130 / 143 for the default
//! disposition) or the application's own handler runs.
//!
//! # Layering rule
//!
//! [`on_signal`] runs in signal context. It must not allocate, must not take a lock that
//! the interrupted code may hold, must not format or log. It only touches atomics and
//! calls async-signal-safe functions (`write`, `sigaction`, `raise`). All work (stopping
//! the profiler, symbolizing, writing the file) happens on the `profile-signal` thread,
//! which the handler wakes through a pipe.
//!
//! # Why not `signal-hook`
//!
//! `signal_hook_registry::unregister` leaves its handler installed: after the last action
//! is removed a default-disposition SIGTERM is ignored from then on (its docs warn of
//! this). A guard's hook must disappear when the guard stops, restoring exactly what was
//! there, so we keep the previous `sigaction` and put it back ourselves with `nix`.
//!
//! # State machine (per process)
//!
//! ```text
//! Removed --install()--> Installed --signal--> Pending --worker: write, restore, re-raise--> Removed
//!    ^                       |
//!    +------- remove() ------+   (remove() restores only a disposition that is still ours)
//! ```

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

use nix::libc;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use parking_lot::Mutex;

use crate::Error;

/// The signals the hook handles, in slot order.
const SIGNALS: [Signal; 2] = [Signal::SIGINT, Signal::SIGTERM];

/// What the hook calls back into (the guard's side: `sys` imports nothing above it).
pub(crate) struct Hooks {
    /// On the hook's worker thread, for a first SIGINT/SIGTERM: stop and write what is
    /// running. The signal is delivered again once this returns.
    pub on_signal: fn(libc::c_int),
    /// In the signal handler, when a second signal is about to end the process: remove
    /// half-written files. Async-signal-safe code only (see the layering rule).
    pub before_dying: fn(),
}

/// The hooks of the last `install` (null: none yet).
static HOOKS: std::sync::atomic::AtomicPtr<Hooks> =
    std::sync::atomic::AtomicPtr::new(std::ptr::null_mut());

fn hooks() -> Option<&'static Hooks> {
    // SAFETY: only `&'static Hooks` are stored.
    unsafe { HOOKS.load(Ordering::Acquire).as_ref() }
}

/// Write end of the wake-up pipe; -1 until the worker exists.
static PIPE_WRITE: AtomicI32 = AtomicI32::new(-1);
/// A delivery of SIGNALS[i] is waiting for the worker.
static PENDING: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];
/// The disposition we replaced for SIGNALS[i] was the default one.
static PREVIOUS_WAS_DEFAULT: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

/// Dispositions we replaced, to restore. Only ever locked on ordinary threads.
static INSTALLED: Mutex<Vec<(Signal, SigAction)>> = Mutex::new(Vec::new());

/// The replaced dispositions again, readable without a lock by the `fork` child handler:
/// `SAVED_VALID[i]` is set (release) after `SAVED[i]` is written, cleared before.
struct Saved(std::cell::UnsafeCell<[libc::sigaction; 2]>);
// SAFETY: written only under INSTALLED's lock while SAVED_VALID[i] is false; read only
// while it is true (acquire), by the fork child handler on the child's one thread.
unsafe impl Sync for Saved {}
// SAFETY: sigaction is plain data; all-zero is a valid (SIG_DFL) value.
static SAVED: Saved = Saved(std::cell::UnsafeCell::new(unsafe { std::mem::zeroed() }));
static SAVED_VALID: [AtomicBool; 2] = [AtomicBool::new(false), AtomicBool::new(false)];

/// `fork()`: a child has no `profile-signal` worker, so our handler would swallow its
/// SIGINT/SIGTERM (the byte goes to a pipe nobody reads). The child gets the dispositions
/// that were there before the hook; the parent's guard stays the parent's to write.
static FORK_HANDLERS: super::fork::Handlers = super::fork::Handlers {
    prepare: super::fork::nothing,
    parent: super::fork::nothing,
    child: restore_in_child,
};

fn restore_in_child() {
    for (i, &signal) in SIGNALS.iter().enumerate() {
        if !SAVED_VALID[i].load(Ordering::Acquire) {
            continue;
        }
        let ours = current(signal).is_ok_and(|now| now.sa_sigaction == handler_address());
        if ours {
            // SAFETY: SAVED_VALID[i] says SAVED[i] holds the disposition we replaced;
            // sigaction is async-signal-safe.
            unsafe {
                libc::sigaction(
                    signal as libc::c_int,
                    &(*SAVED.0.get())[i],
                    std::ptr::null_mut(),
                );
            }
        }
        PENDING[i].store(false, Ordering::SeqCst);
    }
    // The parent's list (maybe half updated if its holder was interrupted): abandoned.
    super::fork::release_in_child(&INSTALLED);
    if let Some(mut installed) = INSTALLED.try_lock() {
        std::mem::forget(std::mem::take(&mut *installed));
    }
}

fn slot(signal: libc::c_int) -> Option<usize> {
    SIGNALS.iter().position(|s| *s as libc::c_int == signal)
}

/// The signal handler. See the layering rule in the module docs.
extern "C" fn on_signal(signal: libc::c_int) {
    // SAFETY: __errno_location returns this thread's errno slot; saving and restoring it
    // keeps the interrupted code's errno intact across the write below.
    let saved_errno = unsafe { *libc::__errno_location() };
    if let Some(i) = slot(signal) {
        if PENDING[i].swap(true, Ordering::SeqCst) {
            // A second delivery while the first is still being handled: the user insists.
            // With the default disposition behind us, die now without writing.
            if PREVIOUS_WAS_DEFAULT[i].load(Ordering::SeqCst) {
                // The profile being written will not be finished: remove its temp file
                // rather than leave a complete-looking `.cpu.pb.gz.XXXXXX.tmp` behind.
                if let Some(h) = hooks() {
                    (h.before_dying)();
                }
                // SAFETY: signal() and raise() are async-signal-safe. The signal is blocked
                // while this handler runs, so it is delivered (and kills the process) when
                // the handler returns.
                unsafe {
                    libc::signal(signal, libc::SIG_DFL);
                    libc::raise(signal);
                }
            }
        } else {
            let fd = PIPE_WRITE.load(Ordering::SeqCst);
            let byte = signal as u8;
            // SAFETY: write() is async-signal-safe; `byte` outlives the call. The pipe is
            // non-blocking, so a full pipe (impossible with one byte per pending signal)
            // could not block the interrupted thread.
            unsafe {
                libc::write(fd, (&byte as *const u8).cast(), 1);
            }
        }
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = saved_errno };
}

/// `on_signal` as `sigaction` reports it, to recognize our own disposition.
fn handler_address() -> libc::sighandler_t {
    on_signal as extern "C" fn(libc::c_int) as *const () as libc::sighandler_t
}

/// A pipe for waking a thread from a signal handler: close-on-exec, the write end
/// non-blocking (a handler must never block). Errors are errno values.
pub(crate) fn wake_pipe() -> Result<(OwnedFd, OwnedFd), i32> {
    let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| e as i32)?;
    nix::fcntl::fcntl(
        &write,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
    )
    .map_err(|e| e as i32)?;
    Ok((read, write))
}

/// Starts the worker thread once; returns an error if the pipe or thread cannot be made.
fn ensure_worker() -> Result<(), Error> {
    static WORKER: OnceLock<Result<(), i32>> = OnceLock::new();
    let started = WORKER.get_or_init(|| {
        let (read, write) = wake_pipe()?;
        std::thread::Builder::new()
            .name("profile-signal".into())
            .spawn(move || worker(read))
            .map_err(|e| e.raw_os_error().unwrap_or(libc::EAGAIN))?;
        // The write end lives for the rest of the process: the handler may use it at any time.
        PIPE_WRITE.store(write.as_raw_fd(), Ordering::SeqCst);
        std::mem::forget(write);
        Ok(())
    });
    started.map_err(|errno| Error::Signal {
        signal: 0,
        source: io::Error::from_raw_os_error(errno),
    })
}

fn worker(read: OwnedFd) {
    let _own = super::tasks::register_own();
    let mut byte = [0u8; 1];
    loop {
        match nix::unistd::read(&read, &mut byte) {
            Ok(1) => {}
            Ok(_) => return, // write end closed: never happens, it is leaked on purpose
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return,
        }
        let signal = libc::c_int::from(byte[0]);
        if let Some(h) = hooks() {
            (h.on_signal)(signal);
        }
        // Put back what was there before us, then deliver the signal to it.
        remove();
        if let Some(i) = slot(signal) {
            PENDING[i].store(false, Ordering::SeqCst);
        }
        // SAFETY: kill() on our own pid with a valid signal number has no memory effects.
        unsafe {
            libc::kill(libc::getpid(), signal);
        }
    }
}

/// The current disposition of `signal`, without changing it.
fn current(signal: Signal) -> Result<libc::sigaction, Error> {
    let mut old = std::mem::MaybeUninit::<libc::sigaction>::uninit();
    // SAFETY: a null `act` only queries; `old` is valid for writes and fully initialized
    // by a successful call.
    let rc = unsafe { libc::sigaction(signal as libc::c_int, std::ptr::null(), old.as_mut_ptr()) };
    if rc != 0 {
        return Err(Error::Signal {
            signal: signal as i32,
            source: io::Error::last_os_error(),
        });
    }
    // SAFETY: rc == 0, so the kernel filled `old`.
    Ok(unsafe { old.assume_init() })
}

/// Installs the hook on SIGINT and SIGTERM. A signal whose disposition is "ignore" (a
/// process started under `nohup`) is left alone.
pub(crate) fn install(hooks: &'static Hooks) -> Result<(), Error> {
    HOOKS.store(hooks as *const Hooks as *mut Hooks, Ordering::Release);
    ensure_worker()?;
    let _ = super::fork::register(super::fork::Slot::Hook, &FORK_HANDLERS);
    let mut installed = INSTALLED.lock();
    if !installed.is_empty() {
        return Ok(());
    }
    for (i, &signal) in SIGNALS.iter().enumerate() {
        let now = current(signal)?;
        if now.sa_sigaction == libc::SIG_IGN {
            continue;
        }
        PREVIOUS_WAS_DEFAULT[i].store(now.sa_sigaction == libc::SIG_DFL, Ordering::SeqCst);
        PENDING[i].store(false, Ordering::SeqCst);
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        SAVED_VALID[i].store(false, Ordering::Release);
        // SAFETY: on_signal only does async-signal-safe work (see the layering rule).
        match unsafe { sigaction(signal, &action) } {
            Ok(previous) => {
                // SAFETY: SAVED_VALID[i] is false and we hold INSTALLED's lock: no reader. `now`
                // is the disposition just replaced (queried above, under the same lock).
                unsafe { (*SAVED.0.get())[i] = now };
                SAVED_VALID[i].store(true, Ordering::Release);
                installed.push((signal, previous));
            }
            Err(e) => {
                let err = Error::Signal {
                    signal: signal as i32,
                    source: io::Error::from_raw_os_error(e as i32),
                };
                drop(installed);
                remove();
                return Err(err);
            }
        }
    }
    Ok(())
}

/// Removes the hook, restoring each previous disposition that has not been replaced by
/// someone else since we installed ours (theirs is not clobbered).
pub(crate) fn remove() {
    let mut installed = INSTALLED.lock();
    for valid in &SAVED_VALID {
        valid.store(false, Ordering::Release);
    }
    for (signal, previous) in installed.drain(..) {
        let still_ours = current(signal)
            .map(|now| now.sa_sigaction == handler_address())
            .unwrap_or(false);
        if still_ours {
            // SAFETY: restoring a disposition that was installed before us.
            let _ = unsafe { sigaction(signal, &previous) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_alloc::allocations;

    #[test]
    fn signal_handler_path_does_not_allocate_and_wakes_the_pipe() {
        // A pipe of our own instead of the worker's: the real worker would re-raise.
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        PIPE_WRITE.store(write.as_raw_fd(), Ordering::SeqCst);
        PENDING[0].store(false, Ordering::SeqCst);
        let before = allocations();
        on_signal(libc::SIGINT);
        let after = allocations();
        assert_eq!(after - before, 0, "the handler allocated");
        let mut byte = [0u8; 1];
        assert_eq!(nix::unistd::read(&read, &mut byte).unwrap(), 1);
        assert_eq!(i32::from(byte[0]), libc::SIGINT);
        assert!(PENDING[0].load(Ordering::SeqCst), "the delivery is pending");

        // A second delivery with a non-default previous disposition writes nothing more.
        PREVIOUS_WAS_DEFAULT[0].store(false, Ordering::SeqCst);
        on_signal(libc::SIGINT);
        nix::fcntl::fcntl(
            &read,
            nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
        )
        .unwrap();
        assert_eq!(
            nix::unistd::read(&read, &mut byte),
            Err(nix::errno::Errno::EAGAIN)
        );
        assert_eq!(allocations() - after, 0);
        PENDING[0].store(false, Ordering::SeqCst);
        PIPE_WRITE.store(-1, Ordering::SeqCst);
        drop(write);
    }
}
