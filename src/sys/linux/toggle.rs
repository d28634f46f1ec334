//! The signal side of `profile::toggle`: a handler that writes one byte to a pipe per
//! delivery, and a thread (`profile-toggle`) that reads them and toggles.
//!
//! # Layering rule
//!
//! [`on_signal`] runs in signal context: it only loads an atomic and calls `write` on a
//! non-blocking pipe (async-signal-safe), saving and restoring `errno`. The pipe lives for
//! the rest of the process once made, so a handler running while the toggle is switched
//! off never writes to a closed (or reused) descriptor.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, Ordering};
use std::thread::JoinHandle;

use nix::libc;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use parking_lot::Mutex;

use crate::Error;

pub(crate) const SIGUSR1: i32 = libc::SIGUSR1;
pub(crate) const SIGUSR2: i32 = libc::SIGUSR2;

/// Bytes on the pipe.
const TOGGLE: u8 = 1;
const EXIT: u8 = 0;

/// The write end of the pipe (-1 before it exists); never closed.
static WRITE_FD: AtomicI32 = AtomicI32::new(-1);
/// The read end, taken by the listening thread and given back when it exits.
static READ_END: Mutex<Option<OwnedFd>> = Mutex::new(None);
/// The signal a listener is installed on (0: none): one toggle at a time.
static LISTENING: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_signal(_signal: libc::c_int) {
    // SAFETY: this thread's errno, saved and restored around the write.
    let errno = unsafe { *libc::__errno_location() };
    let fd = WRITE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = TOGGLE;
        // SAFETY: write() is async-signal-safe; the pipe is non-blocking and never closed.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
}

/// Makes the pipe once.
fn pipe() -> Result<(), Error> {
    static MADE: OnceLock<Result<(), i32>> = OnceLock::new();
    let made = MADE.get_or_init(|| {
        let (read, write) = super::hook::wake_pipe()?;
        *READ_END.lock() = Some(read);
        WRITE_FD.store(write.as_raw_fd(), Ordering::SeqCst);
        std::mem::forget(write); // used by the handler for the rest of the process
        Ok(())
    });
    made.map_err(|errno| Error::Signal {
        signal: 0,
        source: io::Error::from_raw_os_error(errno),
    })
}

fn send(byte: u8) {
    let fd = WRITE_FD.load(Ordering::SeqCst);
    // SAFETY: a write of one byte to our pipe; a full pipe (thousands of unread toggles)
    // drops it, which is what a coalescing signal would do anyway.
    unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
}

/// A listening toggle: the signal's handler and the thread.
#[derive(Debug)]
pub(crate) struct Listener {
    signal: Signal,
    previous: SigAction,
    thread: Option<JoinHandle<()>>,
}

impl Listener {
    /// Installs the handler on `signal` and starts the thread that calls `on_toggle` once
    /// per delivery.
    pub(crate) fn start(
        signal: i32,
        on_toggle: impl Fn() + Send + 'static,
    ) -> Result<Listener, Error> {
        let sig = Signal::try_from(signal).map_err(|e| Error::Signal {
            signal,
            source: io::Error::from_raw_os_error(e as i32),
        })?;
        if matches!(sig, Signal::SIGKILL | Signal::SIGSTOP) {
            return Err(Error::Signal {
                signal,
                source: io::Error::new(io::ErrorKind::InvalidInput, "cannot be caught"),
            });
        }
        if LISTENING
            .compare_exchange(0, signal, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(Error::Signal {
                signal,
                source: io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a toggle already listens (one per process); drop it first",
                ),
            });
        }
        let fail = |e: Error| {
            LISTENING.store(0, Ordering::Release);
            e
        };
        pipe().map_err(fail)?;
        let Some(read) = READ_END.lock().take() else {
            return Err(fail(Error::Signal {
                signal,
                source: io::Error::other("the toggle pipe is in use"),
            }));
        };
        let thread = std::thread::Builder::new()
            .name("profile-toggle".into())
            .spawn(move || {
                let mut byte = [0u8; 1];
                loop {
                    match nix::unistd::read(&read, &mut byte) {
                        Ok(1) if byte[0] == TOGGLE => on_toggle(),
                        Ok(1) => break, // EXIT
                        Err(nix::errno::Errno::EINTR) => continue,
                        _ => break,
                    }
                }
                *READ_END.lock() = Some(read);
            })
            .map_err(|e| fail(Error::system("starting the profile-toggle thread", e)))?;
        let action = SigAction::new(
            SigHandler::Handler(on_signal),
            SaFlags::SA_RESTART,
            SigSet::empty(),
        );
        // An application's own handler is not replaced (before: silently).
        // SAFETY: a zeroed sigaction for the query; a null `act` only reads.
        let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
        // SAFETY: as above; the result is checked.
        let queried = unsafe { libc::sigaction(signal, std::ptr::null(), &mut now) } == 0;
        if queried && now.sa_sigaction != libc::SIG_DFL && now.sa_sigaction != libc::SIG_IGN {
            send(EXIT);
            let _ = thread.join();
            return Err(fail(Error::SignalInUse {
                signal,
                name: sig.as_str(),
                what: "toggling by signal",
                reason: "the application has installed its own handler",
            }));
        }
        // SAFETY: installs a handler that follows the layering rule.
        let previous = match unsafe { sigaction(sig, &action) } {
            Ok(p) => p,
            Err(e) => {
                send(EXIT);
                let _ = thread.join();
                return Err(fail(Error::Signal {
                    signal,
                    source: io::Error::from_raw_os_error(e as i32),
                }));
            }
        };
        Ok(Listener {
            signal: sig,
            previous,
            thread: Some(thread),
        })
    }

    /// Restores the signal's previous disposition (if ours is still installed) and ends
    /// the thread after the toggles already received.
    pub(crate) fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        // SAFETY: puts the previous disposition back; what it replaced is checked below.
        let current = unsafe { sigaction(self.signal, &self.previous) };
        let ours = |h: SigHandler| matches!(h, SigHandler::Handler(f) if f as *const () == on_signal as *const ());
        if let Ok(current) = current
            && !ours(current.handler())
        {
            // Someone replaced ours meanwhile: leave theirs.
            // SAFETY: reinstalls the disposition we just read.
            let _ = unsafe { sigaction(self.signal, &current) };
        }
        send(EXIT);
        let _ = thread.join();
        LISTENING.store(0, Ordering::Release);
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.stop_now();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;
    use std::time::{Duration, Instant};

    use super::*;

    /// A delivery while the thread is busy with the previous toggle (a write, here a 300 ms
    /// sleep) is queued in the pipe and handled afterwards.
    #[test]
    fn a_signal_during_a_slow_toggle_is_kept() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let listener = Listener::start(SIGUSR2, move || {
            seen.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(300));
        })
        .unwrap();
        let wait_for = |n: usize| {
            let end = Instant::now() + Duration::from_secs(10);
            while calls.load(Ordering::SeqCst) < n {
                assert!(
                    Instant::now() < end,
                    "only {} toggles",
                    calls.load(Ordering::SeqCst)
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        // SAFETY: raise() sends the signal to this thread; our handler is installed.
        unsafe { libc::raise(SIGUSR2) };
        wait_for(1); // the first toggle is now sleeping: "writing"
        // SAFETY: as above.
        unsafe { libc::raise(SIGUSR2) };
        wait_for(2);
        listener.stop();
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // Stopped: the disposition is the previous (default) one again.
        // SAFETY: reads the current disposition by installing the default (the same).
        let current = unsafe {
            sigaction(
                Signal::SIGUSR2,
                &SigAction::new(SigHandler::SigDfl, SaFlags::empty(), SigSet::empty()),
            )
        }
        .unwrap();
        assert!(matches!(current.handler(), SigHandler::SigDfl));
    }
}
