//! The crate never silently takes over an application's signal: `runtime::cpu::start`
//! with the application's own SIGPROF handler or armed `ITIMER_PROF`, and
//! `toggle::on_signal` on a signal with the application's handler, are refused with
//! `Error::SignalInUse`, and what the application had is left as it was. (Before: both
//! were replaced, and `ITIMER_PROF` was left disarmed after stop.)

#![cfg(target_os = "linux")]

use nix::libc;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};

extern "C" fn app_handler(_: libc::c_int) {}

fn handler_of(signal: Signal) -> libc::sighandler_t {
    // SAFETY: a query (null act) into a zeroed struct.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        assert_eq!(
            libc::sigaction(signal as i32, std::ptr::null(), &mut old),
            0
        );
        old.sa_sigaction
    }
}

fn install(signal: Signal, handler: SigHandler) {
    let a = SigAction::new(handler, SaFlags::empty(), SigSet::empty());
    // SAFETY: a handler that does nothing, or a default disposition.
    unsafe { sigaction(signal, &a) }.unwrap();
}

#[test]
fn application_signals_are_refused_not_replaced() {
    // SIGPROF with the application's handler.
    install(Signal::SIGPROF, SigHandler::Handler(app_handler));
    let e = profile::runtime::cpu::start(100).unwrap_err();
    assert!(
        matches!(
            e,
            profile::Error::SignalInUse {
                signal: libc::SIGPROF,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("SIGPROF"), "{e}");
    assert_eq!(
        handler_of(Signal::SIGPROF),
        app_handler as *const () as libc::sighandler_t
    );
    install(Signal::SIGPROF, SigHandler::SigDfl);

    // The application's ITIMER_PROF armed (a long interval: it never fires here).
    let armed = libc::itimerval {
        it_interval: libc::timeval {
            tv_sec: 0,
            tv_usec: 0,
        },
        it_value: libc::timeval {
            tv_sec: 3600,
            tv_usec: 0,
        },
    };
    // SAFETY: arms the process's profiling timer with a valid value.
    assert_eq!(
        unsafe { libc::setitimer(libc::ITIMER_PROF, &armed, std::ptr::null_mut()) },
        0
    );
    let e = profile::runtime::cpu::start(100).unwrap_err();
    assert!(e.to_string().contains("ITIMER_PROF"), "{e}");
    // SAFETY: a zeroed itimerval for the query.
    let mut now: libc::itimerval = unsafe { std::mem::zeroed() };
    // SAFETY: reads the timer.
    unsafe { libc::getitimer(libc::ITIMER_PROF, &mut now) };
    assert!(
        now.it_value.tv_sec > 3000,
        "the application's timer was changed"
    );
    // SAFETY: all-zero is a valid (disarmed) itimerval.
    let off: libc::itimerval = unsafe { std::mem::zeroed() };
    // SAFETY: disarms it.
    unsafe { libc::setitimer(libc::ITIMER_PROF, &off, std::ptr::null_mut()) };

    // Free again: profiling starts.
    profile::runtime::cpu::start(100).unwrap().stop().unwrap();

    // SIGUSR1 with the application's handler: toggling by it is refused.
    install(Signal::SIGUSR1, SigHandler::Handler(app_handler));
    let e = profile::toggle::on_signal(profile::toggle::SIGUSR1, || {
        profile::start().cpu().quiet().no_shutdown_hook()
    })
    .unwrap_err();
    assert!(
        matches!(
            e,
            profile::Error::SignalInUse {
                signal: libc::SIGUSR1,
                ..
            }
        ),
        "{e:?}"
    );
    assert_eq!(
        handler_of(Signal::SIGUSR1),
        app_handler as *const () as libc::sighandler_t
    );
}
