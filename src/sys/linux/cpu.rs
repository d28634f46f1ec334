//! CPU sampling with per-thread CPU-time timers: every thread gets a POSIX timer on its
//! own CPU clock that sends SIGPROF to that thread (`timer_create` with
//! `SIGEV_THREAD_ID`), as Go does since 1.18. The handler (`cpu_signal.rs`) walks the
//! interrupted stack into a lock-free ring; the `profile-cpu` manager thread drains it,
//! gives timers to threads that start, deletes those of threads that exit, and rebuilds
//! the module list when libraries are loaded or unloaded.
//!
//! A process-wide `ITIMER_PROF` at the same rate covers the moments between a thread's
//! start and its own timer; on threads that have one (a lock-free set of tids the manager
//! keeps) its signal counts as one more of the thread's own.
//!
//! On a busy machine the kernel, which checks CPU timers at scheduler ticks only, delivers
//! far fewer signals than asked (40–60 per CPU-second here under four busy loops); each
//! still counts every sampling point passed, and what is left when a thread exits or
//! sampling stops is counted too: a timed thread's *tail* at its latest sample
//! (`Collected::add_tail`), the untimed threads' CPU no signal found over the process-timer
//! samples (`Collected::spread_uncounted`). The profile's comments say how much.
//!
//! Why not one process-wide timer alone (`setitimer(ITIMER_PROF)`, what the `pprof` crate
//! uses): the kernel delivers at most about one such signal per tick to the whole
//! process, to whichever thread is running, so with several busy threads the profile
//! loses CPU time and skews toward some threads (`shared/reference/measurements.md`:
//! 0.53× at 2 threads × 250 Hz). A thread's own CPU clock fires for that thread alone;
//! when the kernel delivers fewer signals than the period asks (rates above its tick, a
//! busy machine), each signal counts the sampling points of the thread's schedule passed
//! since the previous one (`cpu_signal::own_timer`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::libc;

use super::cpu_signal::{self, Ring, STATS};
use super::sigsafe::{self, xorshift};
use super::stack::{self, Walker};
use super::symbolize;
use super::tasks;
use crate::Error;
use crate::labels::{self, LabelSet};
use crate::profile::builder::{ProfileBuilder, now_nanos, thread_labels};
use crate::profile::{Label, LabelValue, Profile, ValueType};

/// How often, on average, the manager drains the ring, looks for new threads and
/// re-phases the timers: a thread that starts gets its own timer within 1.5× this.
const SCAN_INTERVAL: Duration = Duration::from_millis(50);

/// Live counters of a running sampler.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Counters {
    pub signals: u64,
    pub lost: u64,
    pub lost_nanos: u64,
    pub leaf_only: u64,
    pub handler_nanos: u64,
    pub frames: u64,
    /// The handler's median time (from a 250 ns histogram: the bucket's middle).
    pub handler_median_nanos: u64,
}

pub(crate) fn counters() -> Counters {
    use std::sync::atomic::Ordering::Relaxed;
    let histogram: Vec<u64> = STATS.histogram.iter().map(|c| c.load(Relaxed)).collect();
    let half = histogram.iter().sum::<u64>().div_ceil(2);
    let mut seen = 0;
    let median_bucket = histogram
        .iter()
        .position(|&n| {
            seen += n;
            half > 0 && seen >= half
        })
        .unwrap_or(0) as u64;
    Counters {
        signals: STATS.signals.load(Relaxed),
        lost: STATS.lost.load(Relaxed),
        lost_nanos: STATS.lost_nanos.load(Relaxed),
        leaf_only: STATS.no_cache.load(Relaxed),
        handler_nanos: STATS.handler_nanos.load(Relaxed),
        frames: STATS.frames.load(Relaxed),
        handler_median_nanos: median_bucket * cpu_signal::HISTOGRAM_STEP_NANOS
            + cpu_signal::HISTOGRAM_STEP_NANOS / 2,
    }
}

/// (stack, tid, thread name, labels).
type Key = (Vec<u64>, i32, [u8; 16], Option<Arc<LabelSet>>);

/// What the manager collected.
#[derive(Default)]
struct Collected {
    /// (Σ weight, Σ CPU nanoseconds) per key.
    samples: HashMap<Key, (u64, u64)>,
    /// Each sample in time order, when asked for (execution traces), up to
    /// `TIMELINE_LIMIT`; then only counted.
    timeline: Option<Vec<TimedSample>>,
    timeline_dropped: u64,
    /// Threads that got a timer, and timers that could not be made (thread gone).
    threads_timed: u64,
    timer_failures: u64,
    /// Each live thread's latest sample (its key), to which its tail is charged.
    last: HashMap<i32, Key>,
    /// Tail CPU not yet counted in whole periods, and all tail CPU counted.
    tail_carry: u64,
    tail_nanos: u64,
    /// Σ weight of the process-timer samples (threads without their own timer yet) per
    /// key, over which the CPU no signal found is spread (see `spread_uncounted`).
    untimed: HashMap<Key, u64>,
    /// When sampling stopped: the CPU the process used that no sample or tail counted,
    /// and whether it was spread over `untimed`.
    uncounted_nanos: i64,
    uncounted_spread: bool,
}

/// One CPU sample with its time, for execution traces.
#[derive(Debug, Clone)]
#[cfg_attr(not(feature = "trace"), allow(dead_code))]
pub(crate) struct TimedSample {
    /// CLOCK_MONOTONIC, nanoseconds.
    pub at_nanos: u64,
    pub tid: i32,
    pub thread_name: String,
    /// The innermost frames (the interrupted instruction first), at most 16.
    pub frames: Vec<u64>,
    /// The innermost function outside the standard library (or the innermost), `??` if
    /// unknown; filled when sampling stops.
    pub function: String,
    /// The thread's labels then (`labels::with`, `Labeled`).
    pub labels: Option<Arc<LabelSet>>,
}

/// Samples kept in a timeline at most.
const TIMELINE_LIMIT: usize = 200_000;

impl Collected {
    /// What a cut hands over: the samples and tails counted so far. What the next cut
    /// needs stays (each thread's latest key, the process-timer weights, the carry).
    fn take_cut(&mut self) -> Collected {
        let tail_nanos = std::mem::take(&mut self.tail_nanos);
        Collected {
            samples: std::mem::take(&mut self.samples),
            threads_timed: self.threads_timed,
            timer_failures: self.timer_failures,
            tail_nanos,
            ..Collected::default()
        }
    }

    fn add(&mut self, s: &cpu_signal::Sample) {
        // SAFETY: the sample's label reference (from acquire_current), taken over once.
        let labels = unsafe { labels::take(s.labels) };
        let key = (s.frames[..s.len as usize].to_vec(), s.tid, s.name, labels);
        if self.last.get(&s.tid) != Some(&key) {
            self.last.insert(s.tid, key.clone());
        }
        if s.weight == 0 {
            return; // only where the thread is (see `cpu_signal::handler`)
        }
        if let Some(timeline) = &mut self.timeline {
            if timeline.len() < TIMELINE_LIMIT {
                timeline.push(TimedSample {
                    at_nanos: s.at_nanos,
                    tid: s.tid,
                    thread_name: name_of(&s.name),
                    frames: s.frames[..(s.len as usize).min(16)].to_vec(),
                    // Named at the end: symbolizing here would stall the drain.
                    function: String::new(),
                    labels: key.3.clone(),
                });
            } else {
                self.timeline_dropped += 1;
            }
        }
        if s.untimed {
            *self.untimed.entry(key.clone()).or_default() += u64::from(s.weight);
        }
        let v = self.samples.entry(key).or_default();
        v.0 += u64::from(s.weight);
        v.1 += s.nanos;
    }

    /// Spreads `nanos` of CPU that no sample counted — threads that exited before any
    /// signal found them, on a busy machine where signals come seldom — over the
    /// process-timer samples in proportion to their weights (largest remainders), in
    /// whole periods. Those samples are the profile's proportional sample of the CPU of
    /// threads without their own timer, which is where this time went; the profile's
    /// comments say how much was spread. Without such samples it stays uncounted (and
    /// said so).
    fn spread_uncounted(&mut self, nanos: i64, period: u64) {
        self.uncounted_nanos = nanos;
        let period = period.max(1);
        let total: u64 = self.untimed.values().sum();
        let periods = nanos.max(0) as u64 / period;
        if periods == 0 || total == 0 {
            return;
        }
        let mut shares: Vec<(&Key, u64, u64)> = self
            .untimed
            .iter()
            .map(|(k, &w)| {
                let exact = u128::from(periods) * u128::from(w);
                let t = u128::from(total);
                (k, (exact / t) as u64, (exact % t) as u64)
            })
            .collect();
        let given: u64 = shares.iter().map(|s| s.1).sum();
        shares.sort_by_key(|s| std::cmp::Reverse(s.2));
        for s in shares.iter_mut().take((periods - given) as usize) {
            s.1 += 1;
        }
        for (key, add, _) in shares {
            let v = self.samples.entry(key.clone()).or_default();
            v.0 += add;
            v.1 += add * period;
        }
        self.uncounted_spread = true;
    }

    /// Counts the `nanos` of CPU thread `tid` used after its last signal (its tail) at
    /// its latest sample's stack, in whole periods (the rest carried to the next tail).
    ///
    /// Why: the kernel checks CPU timers at scheduler ticks only, and only on the thread
    /// running at that tick; on a busy machine a thread may be running at few of them (40
    /// to 60 signals per CPU-second, gaps up to 370 ms, whatever the period, measured
    /// under four busy loops on two cores). Each signal still counts every sampling point
    /// passed, but what a thread used after its last one was lost when it exited or
    /// sampling stopped: up to 14% of a 1.5 s thread's CPU. Its latest sample is the best
    /// estimate of where that time went; a thread never sampled leaves its tail to the
    /// process timer (see `cpu_signal::process_timer`).
    fn add_tail(&mut self, tid: i32, nanos: u64, period: u64) {
        let Some(key) = self.last.get(&tid) else {
            return;
        };
        cpu_signal::untimed_reported(nanos);
        self.tail_nanos += nanos;
        self.tail_carry += nanos;
        let periods = self.tail_carry / period.max(1);
        self.tail_carry -= periods * period;
        if periods > 0 {
            let v = self.samples.entry(key.clone()).or_default();
            v.0 += periods;
            v.1 += periods * period;
        }
    }
}

/// A timed thread's CPU time at the latest scan that read it, and, while its clock stands
/// still, what its timer had reported then.
#[derive(Clone, Copy)]
struct Seen {
    cpu: u64,
    idle_at: Option<u64>,
}

/// The per-thread timers: by thread, the timer and its slot in `cpu_signal::TIMERS`.
struct Timers {
    period: Duration,
    by_tid: HashMap<i32, (libc::timer_t, usize)>,
    /// Each timed thread's CPU time at the latest scan (a thread that exits before the
    /// next scan is counted up to there).
    cpu_seen: HashMap<i32, Seen>,
    /// Slots of `cpu_signal::TIMERS` not in use.
    free: Vec<usize>,
    rng: u64,
}

// SAFETY: a timer_t is an id the kernel (through glibc) hands out; the timers are used
// only by the thread that owns this struct.
unsafe impl Send for Timers {}

fn timespec(d: Duration) -> libc::timespec {
    sigsafe::timespec(d.as_nanos() as u64)
}

impl Timers {
    fn new(period: Duration) -> Timers {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            | 1;
        Timers {
            period,
            by_tid: HashMap::new(),
            cpu_seen: HashMap::new(),
            free: (0..cpu_signal::MAX_TIMERS).rev().collect(),
            rng: seed,
        }
    }

    /// The first expiry: the time to the next point of a schedule whose gaps are uniform
    /// in 0.75..1.25 periods, seen at a random moment (the gaps' equilibrium residual:
    /// uniform below 0.75 periods with probability 3/4, else triangular down to 1.25
    /// periods). A thread then has its chance of being sampled in proportion to the CPU
    /// it uses, however short it lives (see `cpu_signal::own_timer`).
    fn first_expiry(&mut self) -> Duration {
        let mut draw = || (xorshift(&mut self.rng) >> 11) as f64 / (1u64 << 53) as f64;
        let p = self.period.as_secs_f64();
        let r = if draw() < 0.75 {
            0.75 * p * draw()
        } else {
            1.25 * p - 0.5 * p * draw().sqrt()
        };
        Duration::from_secs_f64(r).max(Duration::from_nanos(1))
    }

    /// Gives thread `tid` a timer on its CPU clock; false if that failed (it exited).
    /// The thread joins the `timed` set first, so the process-wide timer stops counting
    /// it (at most one period of its CPU goes unsampled rather than counted twice).
    fn create(&mut self, tid: i32) -> bool {
        let Some(slot) = self.free.pop() else {
            return false; // more threads than timer slots: the process timer samples them
        };
        if !cpu_signal::timed::insert(tid, slot) {
            // More threads than the set holds: the process timer would count the rest
            // twice, so it goes (new threads' first milliseconds go unsampled instead).
            set_process_timer(Duration::ZERO);
        }
        let undo = |timers: &mut Timers| {
            cpu_signal::timed::remove(tid);
            timers.free.push(slot);
            false
        };
        let clock = thread_clock(tid);
        // SAFETY: an all-zero sigevent is valid; the fields that matter are set below.
        let mut sev: libc::sigevent = unsafe { std::mem::zeroed() };
        sev.sigev_notify = libc::SIGEV_THREAD_ID;
        sev.sigev_signo = libc::SIGPROF;
        sev.sigev_notify_thread_id = tid;
        // The handler finds the timer (to re-arm it) and its start through the slot.
        sev.sigev_value.sival_ptr = slot as *mut libc::c_void;
        let mut id: libc::timer_t = std::ptr::null_mut();
        // SAFETY: valid pointers to a sigevent and a timer_t; the result is checked.
        if unsafe { libc::timer_create(clock, &mut sev, &mut id) } != 0 {
            return undo(self);
        }
        let first = self.first_expiry();
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: the thread's CPU clock, a valid timespec; on failure (the thread just
        // exited) the timer never fires, and the slot is freed at the next scan.
        unsafe { libc::clock_gettime(clock, &mut now) };
        let entry = &cpu_signal::TIMERS[slot];
        let now = now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64;
        entry
            .reported_cpu_nanos
            .store(now, std::sync::atomic::Ordering::Relaxed);
        entry.first_expiry_cpu_nanos.store(
            now + first.as_nanos() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        entry
            .id
            .store(id as usize + 1, std::sync::atomic::Ordering::Release);
        let spec = libc::itimerspec {
            it_interval: timespec(self.period),
            it_value: timespec(first),
        };
        // SAFETY: a timer just created, a valid itimerspec; the result is checked.
        if unsafe { libc::timer_settime(id, 0, &spec, std::ptr::null_mut()) } != 0 {
            entry.id.store(0, std::sync::atomic::Ordering::Release);
            // SAFETY: deleting the timer just created.
            unsafe { libc::timer_delete(id) };
            return undo(self);
        }
        self.by_tid.insert(tid, (id, slot));
        true
    }

    /// Notes the timed threads' CPU times (see `cpu_seen`). A thread whose clock did not
    /// move since the previous scan is idle and not read again until its timer reports
    /// (a signal came, so it ran): reading every clock cost 1% of a core with 1000 idle
    /// threads (manager 2.4% → 3.4%). An idle thread that wakes and exits between two
    /// scans without a signal leaves its time to the spread at stop.
    fn see_cpu(&mut self) {
        for (&tid, &(_, slot)) in &self.by_tid {
            let reported = cpu_signal::TIMERS[slot]
                .reported_cpu_nanos
                .load(std::sync::atomic::Ordering::Relaxed);
            let seen = self.cpu_seen.get(&tid).copied();
            if let Some(Seen {
                idle_at: Some(r), ..
            }) = seen
                && r == reported
            {
                continue;
            }
            if let Some(cpu) = thread_cpu(tid) {
                let idle = seen.is_some_and(|s| s.cpu == cpu);
                let idle_at = idle.then_some(reported);
                self.cpu_seen.insert(tid, Seen { cpu, idle_at });
            }
        }
    }

    /// The CPU thread `tid` used after its timer's last signal: up to now if it is still
    /// there, else up to the latest scan.
    fn tail(&self, tid: i32) -> u64 {
        let Some(&(_, slot)) = self.by_tid.get(&tid) else {
            return 0;
        };
        let Some(cpu) = thread_cpu(tid).or_else(|| self.cpu_seen.get(&tid).map(|s| s.cpu)) else {
            return 0;
        };
        let reported = cpu_signal::TIMERS[slot]
            .reported_cpu_nanos
            .load(std::sync::atomic::Ordering::Relaxed);
        cpu.saturating_sub(reported)
    }

    /// A random wait before the next scan: uniform in 0.5..1.5 × `SCAN_INTERVAL`.
    fn scan_wait(&mut self) -> Duration {
        let base = SCAN_INTERVAL.as_micros() as u64;
        Duration::from_micros(base / 2 + xorshift(&mut self.rng) % base)
    }

    fn delete(&mut self, tid: i32) {
        if let Some((id, slot)) = self.by_tid.remove(&tid) {
            // The handler stops re-arming it first.
            cpu_signal::TIMERS[slot]
                .id
                .store(0, std::sync::atomic::Ordering::Release);
            // SAFETY: a timer we created and have not deleted. Failure (EINVAL) would mean
            // it is already gone, which is the goal.
            unsafe { libc::timer_delete(id) };
            cpu_signal::timed::remove(tid);
            self.cpu_seen.remove(&tid);
            self.free.push(slot);
        }
    }

    fn delete_all(&mut self) {
        let tids: Vec<i32> = self.by_tid.keys().copied().collect();
        for tid in tids {
            self.delete(tid);
        }
    }
}

/// Thread `tid`'s CPU clock id, as glibc's pthread_getcpuclockid computes it:
/// MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED) = (~tid << 3) | PERTHREAD | SCHED.
fn thread_clock(tid: i32) -> libc::clockid_t {
    ((!tid) << 3) | 6
}

/// Thread `tid`'s CPU time; `None` once it has exited.
fn thread_cpu(tid: i32) -> Option<u64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a thread CPU clock id and a valid timespec; fails (EINVAL) for a thread that
    // has exited.
    (unsafe { libc::clock_gettime(thread_clock(tid), &mut now) } == 0)
        .then(|| now.tv_sec as u64 * 1_000_000_000 + now.tv_nsec as u64)
}

/// Arms (or, with zero, disarms) the process-wide CPU timer, `ITIMER_PROF`. It samples
/// threads in the moments before the manager gives them their own timer (a thread that
/// lives 20 ms would otherwise lose up to half its samples); the handler ignores its
/// signals on threads that have their own. Go does the same since 1.18.
fn set_process_timer(period: Duration) {
    let tv = libc::timeval {
        tv_sec: period.as_secs() as libc::time_t,
        tv_usec: libc::suseconds_t::from(period.subsec_micros() as i32),
    };
    let spec = libc::itimerval {
        it_interval: tv,
        it_value: tv,
    };
    // SAFETY: a valid itimerval; failure only leaves new threads' first milliseconds
    // unsampled, as without it.
    unsafe { libc::setitimer(libc::ITIMER_PROF, &spec, std::ptr::null_mut()) };
}

impl Drop for Timers {
    fn drop(&mut self) {
        self.delete_all();
    }
}

/// SIGPROF's disposition before ours, restored at stop unless it was the default (a
/// signal still pending when the timers are deleted would then end the process; our
/// handler stays and ignores it).
struct Previous(libc::sigaction);

// SAFETY: a plain C struct copied between threads.
unsafe impl Send for Previous {}

/// Refuses to take over an application's own SIGPROF handler or armed `ITIMER_PROF`
/// (before: both were silently replaced, and the timer left disarmed after stop).
fn check_sigprof_is_free() -> Result<(), Error> {
    let ours = cpu_signal::handler as *const () as libc::sighandler_t;
    // SAFETY: a zeroed sigaction for the query; a null `act` only reads.
    let mut now: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: as above; the result is checked.
    if unsafe { libc::sigaction(libc::SIGPROF, std::ptr::null(), &mut now) } != 0 {
        return Err(Error::Signal {
            signal: libc::SIGPROF,
            source: std::io::Error::last_os_error(),
        });
    }
    let h = now.sa_sigaction;
    if h != libc::SIG_DFL && h != libc::SIG_IGN && h != ours {
        return Err(Error::SignalInUse {
            signal: libc::SIGPROF,
            name: "SIGPROF",
            what: "CPU profiling",
            reason: "the application has installed its own handler",
        });
    }
    // SAFETY: a zeroed itimerval for the query.
    let mut timer: libc::itimerval = unsafe { std::mem::zeroed() };
    // SAFETY: getitimer writes the timer into `timer`; the result is checked.
    let armed = unsafe { libc::getitimer(libc::ITIMER_PROF, &mut timer) } == 0
        && (timer.it_value.tv_sec != 0 || timer.it_value.tv_usec != 0);
    if armed && h != ours {
        return Err(Error::SignalInUse {
            signal: libc::SIGPROF,
            name: "SIGPROF",
            what: "CPU profiling",
            reason: "the application's ITIMER_PROF is armed",
        });
    }
    Ok(())
}

fn install_handler() -> Result<Previous, Error> {
    check_sigprof_is_free()?;
    // SAFETY: a zeroed sigaction is valid; the fields are set below.
    let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
    action.sa_sigaction = cpu_signal::handler as *const () as libc::sighandler_t;
    action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART;
    // SAFETY: sigemptyset/sigaddset on a valid sigset_t. The capture signals are blocked
    // while our handler runs, so a thread dump never shows a thread inside it... and the
    // other way round (the capture handler blocks SIGPROF).
    unsafe {
        libc::sigemptyset(&mut action.sa_mask);
        for s in libc::SIGRTMIN()..=libc::SIGRTMAX() {
            libc::sigaddset(&mut action.sa_mask, s);
        }
    }
    // SAFETY: a zeroed sigaction for the old one.
    let mut old: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: installs a handler that follows the layering rule; the result is checked.
    if unsafe { libc::sigaction(libc::SIGPROF, &action, &mut old) } != 0 {
        return Err(Error::Signal {
            signal: libc::SIGPROF,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(Previous(old))
}

fn restore_handler(previous: &Previous) {
    let ours = cpu_signal::handler as *const () as libc::sighandler_t;
    if previous.0.sa_sigaction == libc::SIG_DFL || previous.0.sa_sigaction == ours {
        return;
    }
    // SAFETY: reinstalls the disposition sigaction gave us. Failure leaves our handler,
    // which ignores signals while disabled.
    unsafe { libc::sigaction(libc::SIGPROF, &previous.0, std::ptr::null_mut()) };
}

/// What the manager thread is told.
enum Command {
    /// Stop sampling (also when the sender is dropped).
    Stop,
    /// Hand over what was collected since the start or the previous cut, keep sampling.
    Cut(mpsc::Sender<Collected>),
}

/// A running CPU sampler.
pub(crate) struct Sampler {
    stop: mpsc::Sender<Command>,
    thread: JoinHandle<Collected>,
    previous: Previous,
    hz: u32,
    started: Instant,
    start_nanos: i64,
    /// The handler's counters at the previous cut (a cut's lost samples are its own).
    at_cut: Counters,
}

impl Sampler {
    /// Starts sampling every thread at `hz` samples per CPU-second (validated by the
    /// caller; one sampler per process, also checked by the caller).
    pub(crate) fn start(hz: u32) -> Result<Sampler, Error> {
        Sampler::start_with(hz, false)
    }

    /// Starts sampling, keeping every sample's time too (see [`Sampler::stop_timeline`]).
    #[cfg_attr(not(feature = "trace"), allow(dead_code))]
    pub(crate) fn start_timeline(hz: u32) -> Result<Sampler, Error> {
        Sampler::start_with(hz, true)
    }

    fn start_with(hz: u32, timeline: bool) -> Result<Sampler, Error> {
        if !stack::SUPPORTED {
            return Err(Error::Unsupported {
                what: "CPU profiling on this architecture",
            });
        }
        let period = Duration::from_nanos(1_000_000_000 / u64::from(hz));
        // The caches, walker and ring are the profiler's, not the program's heap.
        let _untracked = super::untracked::Untracked::new();
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        stack::ensure_caches();
        cpu_signal::reset_stats();
        let previous = install_handler()?;
        let template = stack::walker();
        cpu_signal::publish_walker(template.with_fresh_writable());
        // Room for ~1/4 s of samples of every CPU at 1000 Hz between drains (10 ms).
        cpu_signal::enable(
            Ring::new((256 * cpus).clamp(1024, 16384)),
            period.as_nanos() as u64,
        );
        let mut timers = Timers::new(period);
        let mut collected = Collected {
            timeline: timeline.then(Vec::new),
            ..Collected::default()
        };
        scan(
            &mut timers,
            &mut collected,
            &template,
            &mut HashSet::new(),
            false,
        );
        set_process_timer(period);
        let (stop, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("profile-cpu".into())
            .spawn(move || manage(&rx, timers, collected, template));
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                // The closure (and the timers in it) is gone: they were deleted.
                set_process_timer(Duration::ZERO);
                cpu_signal::timed::clear();
                cpu_signal::disable(|s| {
                    // SAFETY: the sample's label reference, released once.
                    drop(unsafe { labels::take(s.labels) });
                });
                restore_handler(&previous);
                return Err(Error::system("starting the profile-cpu thread", e));
            }
        };
        Ok(Sampler {
            stop,
            thread,
            previous,
            hz,
            started: Instant::now(),
            start_nanos: now_nanos(),
            at_cut: Counters::default(),
        })
    }

    /// The profile of the samples taken since the start or the previous cut; sampling
    /// goes on. Every sample is in exactly one cut (or in the final `stop`): the manager
    /// drains the ring and hands its table over between two drains, and what the
    /// handlers write meanwhile goes to the next cut.
    pub(crate) fn cut(&mut self) -> Result<Profile, Error> {
        let gone = || {
            Error::system(
                "cutting the CPU profile",
                std::io::Error::other("the profile-cpu thread has ended"),
            )
        };
        let (tx, rx) = mpsc::channel();
        self.stop.send(Command::Cut(tx)).map_err(|_| gone())?;
        let part = rx.recv().map_err(|_| gone())?;
        let now = Instant::now();
        let start_nanos = self.start_nanos;
        let duration = now.duration_since(self.started);
        self.started = now;
        // The next window starts where this one ended (not a second clock reading, which
        // a preemption between the two would leave a gap after).
        self.start_nanos += duration.as_nanos() as i64;
        let since = std::mem::replace(&mut self.at_cut, counters());
        Ok(build(&part, self.hz, start_nanos, duration, since))
    }

    /// Stops sampling and drops what was collected.
    pub(crate) fn discard(self) {
        let _ = self.stop.send(Command::Stop);
        let _ = self.thread.join();
        restore_handler(&self.previous);
    }

    /// Stops sampling; returns the profile, the samples in time order (named by their
    /// innermost function) and how many did not fit in the timeline.
    #[cfg_attr(not(feature = "trace"), allow(dead_code))]
    pub(crate) fn stop_timeline(self) -> Result<(Profile, Vec<TimedSample>, u64), Error> {
        let _ = self.stop.send(Command::Stop);
        let mut collected = self.thread.join().unwrap_or_default();
        let duration = self.started.elapsed();
        restore_handler(&self.previous);
        let mut timeline = collected.timeline.take().unwrap_or_default();
        timeline.sort_by_key(|t| t.at_nanos);
        let mut symbolizer = symbolize::shared();
        // The innermost function that is not the standard library's (an inlined
        // `Iterator::next` says less than the loop it runs in).
        let library = |n: &str| {
            [
                "core::", "<core::", "alloc::", "<alloc::", "std::", "<std::", "<u", "<i",
            ]
            .iter()
            .any(|p| n.starts_with(p))
        };
        for t in &mut timeline {
            let names: Vec<String> = t
                .frames
                .iter()
                .enumerate()
                .flat_map(|(i, &pc)| symbolizer.names(if i == 0 { pc } else { pc - 1 }))
                .collect();
            t.function = names
                .iter()
                .find(|n| !library(n))
                .or(names.first())
                .cloned()
                .unwrap_or_else(|| "??".into());
        }
        drop(symbolizer);
        let dropped = collected.timeline_dropped;
        Ok((
            build(&collected, self.hz, self.start_nanos, duration, self.at_cut),
            timeline,
            dropped,
        ))
    }

    /// Stops sampling and builds the profile.
    pub(crate) fn stop(self) -> Result<Profile, Error> {
        let _ = self.stop.send(Command::Stop);
        let collected = self.thread.join().unwrap_or_default();
        let duration = self.started.elapsed();
        restore_handler(&self.previous);
        Ok(build(
            &collected,
            self.hz,
            self.start_nanos,
            duration,
            self.at_cut,
        ))
    }
}

/// Gives new threads timers (after publishing a walker that knows their stacks) and
/// deletes the timers of threads that exited.
fn scan(
    timers: &mut Timers,
    collected: &mut Collected,
    template: &Walker,
    seen: &mut HashSet<i32>,
    publish: bool,
) {
    let Ok(tids) = tasks::tids() else {
        return;
    };
    let new: Vec<i32> = tids
        .iter()
        .copied()
        .filter(|t| !timers.by_tid.contains_key(t))
        .collect();
    if !new.is_empty() && publish {
        // Their stacks are mapped now: walkers built from here on can read them.
        cpu_signal::publish_walker(template.with_fresh_writable());
    }
    for tid in new {
        if timers.create(tid) {
            collected.threads_timed += 1;
        } else {
            collected.timer_failures += 1;
        }
    }
    seen.clear();
    seen.extend(tids.iter().copied());
    let gone: Vec<i32> = timers
        .by_tid
        .keys()
        .copied()
        .filter(|t| !seen.contains(t))
        .collect();
    let period = timers.period.as_nanos() as u64;
    for tid in gone {
        collected.add_tail(tid, timers.tail(tid), period);
        timers.delete(tid);
    }
    collected.last.retain(|tid, _| seen.contains(tid));
    timers.see_cpu();
}

/// The manager thread: drain, scan, rebuild, until told to stop.
fn manage(
    stop: &mpsc::Receiver<Command>,
    mut timers: Timers,
    mut collected: Collected,
    mut template: Walker,
) -> Collected {
    let _own = tasks::register_own();
    // The manager's allocations (the samples' table, walkers) are the profiler's.
    let _untracked = super::untracked::Untracked::new();
    let mut seen = HashSet::new();
    // Until told to stop (or the sampler is gone).
    // The wait is drawn uniformly from 0.5..1.5 × SCAN_INTERVAL, so that the re-phasing
    // below does not itself keep step with a program's rhythm.
    loop {
        match stop.recv_timeout(timers.scan_wait()) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(Command::Cut(reply)) => {
                cpu_signal::drain(|s| collected.add(s));
                let _ = reply.send(collected.take_cut());
                continue;
            }
            Ok(Command::Stop) | Err(RecvTimeoutError::Disconnected) => break,
        }
        cpu_signal::drain(|s| collected.add(s));
        if !template.is_current() {
            // Objects were loaded or unloaded: copy the module list again.
            template = stack::walker();
            cpu_signal::publish_walker(template.with_fresh_writable());
        }
        scan(&mut timers, &mut collected, &template, &mut seen, true);
    }
    set_process_timer(Duration::ZERO);
    // Handlers stop counting first, so that a thread's tail is its CPU after the last
    // sample it will ever take.
    cpu_signal::disable(|s| collected.add(s));
    let period = timers.period.as_nanos() as u64;
    let tids: Vec<i32> = timers.by_tid.keys().copied().collect();
    for tid in tids {
        collected.add_tail(tid, timers.tail(tid), period);
    }
    timers.delete_all();
    cpu_signal::timed::clear();
    collected.spread_uncounted(cpu_signal::untimed_uncounted(), period);
    collected
}

fn name_of(bytes: &[u8; 16]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// The profile of `c`; `since` holds the handler's counters at the start of what `c`
/// covers (the previous cut's), so that lost samples are counted in one profile only.
fn build(c: &Collected, hz: u32, start_nanos: i64, duration: Duration, since: Counters) -> Profile {
    let period = 1_000_000_000 / i64::from(hz);
    let now = counters();
    let stats = Counters {
        signals: now.signals - since.signals,
        lost: now.lost - since.lost,
        lost_nanos: now.lost_nanos - since.lost_nanos,
        leaf_only: now.leaf_only - since.leaf_only,
        handler_nanos: now.handler_nanos - since.handler_nanos,
        frames: now.frames - since.frames,
        handler_median_nanos: now.handler_median_nanos,
    };
    let mut symbolizer = symbolize::shared();
    let mut b = ProfileBuilder::new(
        &mut *symbolizer,
        vec![
            ValueType::new("samples", "count"),
            ValueType::new("cpu", "nanoseconds"),
        ],
    );
    let (mut weight_total, mut nanos_total) = (0u64, 0u64);
    for ((stack, tid, name, user), &(weight, nanos)) in &c.samples {
        weight_total += weight;
        nanos_total += nanos;
        let mut labels = thread_labels(name_of(name), *tid);
        if let Some(user) = user {
            labels.extend(user.0.iter().map(|(k, v)| Label {
                key: k.clone(),
                value: LabelValue::Str(v.clone()),
            }));
        }
        b.add(stack, true, &[weight as i64, nanos as i64], labels);
    }
    if stats.lost > 0 {
        // Counted, not hidden: Go's name for the frame of samples it could not record.
        b.add_synthetic(
            "lostProfileEvent",
            &[stats.lost as i64, stats.lost_nanos as i64],
            Vec::new(),
        );
    }
    let header = b.header();
    header.period_type = Some(ValueType::new("cpu", "nanoseconds"));
    header.period = period;
    header.time_nanos = start_nanos;
    header.duration_nanos = duration.as_nanos() as i64;
    let cpu_seconds = (nanos_total + stats.lost_nanos) as f64 / 1e9;
    if cpu_seconds > 0.0 {
        header.comments.push(format!(
            "cpu sampling: requested {hz} Hz per CPU-second; timer signals arrived at {:.0} Hz; \
             {} of {} samples are sampling points passed between two signals (a signal \
             counts every point passed since the previous one)",
            stats.signals as f64 / cpu_seconds,
            (weight_total + stats.lost).saturating_sub(stats.signals),
            weight_total + stats.lost,
        ));
    }
    if stats.signals > 0 {
        header.comments.push(format!(
            "cpu sampling: signal handler {:.2} µs per sample on average, median {:.2} µs, {:.1} frames",
            stats.handler_nanos as f64 / stats.signals as f64 / 1e3,
            stats.handler_median_nanos as f64 / 1e3,
            stats.frames as f64 / stats.signals as f64,
        ));
    }
    // Said when it is 1% of the profile or more (a thread's last few milliseconds are
    // always a tail).
    let notable = |nanos: i64| nanos >= period && nanos as u64 * 100 >= nanos_total;
    if notable(c.uncounted_nanos) {
        header.comments.push(format!(
            "cpu sampling: {:.1} ms of CPU of threads that exited before any timer signal \
             found them {}",
            c.uncounted_nanos as f64 / 1e6,
            if c.uncounted_spread {
                "is spread over the samples of threads without their own timer yet, in \
                 proportion"
            } else {
                "is in no sample"
            }
        ));
    }
    if notable(c.tail_nanos as i64) {
        header.comments.push(format!(
            "cpu sampling: {:.1} ms of CPU that threads used after their last timer signal \
             (when they exited or sampling stopped) is charged to each one's latest sample",
            c.tail_nanos as f64 / 1e6
        ));
    }
    if stats.lost > 0 {
        header.comments.push(format!(
            "cpu sampling: {} samples lost (buffer full), shown as lostProfileEvent",
            stats.lost
        ));
    }
    if stats.leaf_only > 0 {
        header.comments.push(format!(
            "cpu sampling: {} samples with the interrupted function only (no unwinder free)",
            stats.leaf_only
        ));
    }
    b.finish()
}

#[cfg(test)]
mod tests {
    /// The docs quote the manager's wait (`SCAN_INTERVAL` × 0.5..1.5): they change with it.
    #[test]
    fn the_docs_quote_the_scan_interval() {
        let ms = SCAN_INTERVAL.as_millis();
        let quoted = format!("{}–{} ms", ms / 2, ms * 3 / 2);
        for (name, text) in [
            (
                "docs/architecture.md",
                include_str!("../../../docs/architecture.md"),
            ),
            ("src/runtime/cpu.rs", include_str!("../../runtime/cpu.rs")),
        ] {
            assert!(text.contains(&quoted), "{name} does not say {quoted}");
        }
    }

    use std::hint::black_box;

    use super::*;
    use crate::test_alloc::allocations;

    fn key(tid: i32) -> Key {
        (vec![0x1000, tid as u64], tid, [0; 16], None)
    }

    /// Uncounted CPU goes to the process-timer samples in proportion (largest
    /// remainders), in whole periods; nothing without such samples.
    #[test]
    fn uncounted_cpu_is_spread_over_process_timer_samples() {
        let mut c = Collected::default();
        c.spread_uncounted(10_000, 1000);
        assert!(c.samples.is_empty() && !c.uncounted_spread);
        c.untimed.insert(key(1), 2);
        c.untimed.insert(key(2), 1);
        c.untimed.insert(key(3), 0);
        c.spread_uncounted(10_500, 1000); // 10 whole periods
        assert!(c.uncounted_spread);
        assert_eq!(c.samples[&key(1)], (7, 7000));
        assert_eq!(c.samples[&key(2)], (3, 3000));
        assert_eq!(c.samples.get(&key(3)).copied().unwrap_or_default(), (0, 0));
        let mut c = Collected::default();
        c.untimed.insert(key(1), 1);
        c.spread_uncounted(-5000, 1000);
        assert!(c.samples.is_empty());
    }

    /// A tail goes to the thread's latest sample in whole periods, the rest carried; a
    /// thread never sampled gets none.
    #[test]
    fn tails_go_to_the_latest_sample_in_whole_periods() {
        let mut c = Collected::default();
        c.add_tail(7, 5000, 1000);
        assert!(c.samples.is_empty());
        c.last.insert(7, key(7));
        c.add_tail(7, 2500, 1000);
        c.add_tail(7, 600, 1000);
        assert_eq!(c.samples[&key(7)], (3, 3000));
        assert_eq!((c.tail_nanos, c.tail_carry), (3100, 100));
    }

    /// The layering rule, checked: a thread sampled at 1000 Hz for 300 ms of CPU (its own
    /// loop allocates nothing) sees no allocation, so the handler made none.
    #[test]
    fn handler_allocates_nothing() {
        // One sampler per process: wait for other tests' CPU profiles.
        let _claim = loop {
            match crate::runtime::cpu::claim() {
                Ok(c) => break c,
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        let sampler = Sampler::start(1000).unwrap();
        let worker = std::thread::spawn(|| {
            // Let the manager give this thread its timer first.
            std::thread::sleep(Duration::from_millis(50));
            let before = allocations();
            // 300 ms of this thread's CPU time (not wall time: on a busy machine the
            // thread gets less CPU per second, and a wall-time loop fewer samples).
            let end = super::sigsafe::thread_cpu_nanos() + 300_000_000;
            let mut x = 1u64;
            while super::sigsafe::thread_cpu_nanos() < end {
                for _ in 0..1000 {
                    x = black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            // SAFETY: gettid has no preconditions.
            (allocations() - before, unsafe { libc::gettid() })
        });
        let (allocated, tid) = worker.join().unwrap();
        let p = sampler.stop().unwrap();
        assert_eq!(allocated, 0, "allocations on a sampled thread");
        let on_worker: i64 = p
            .samples
            .iter()
            .filter(|s| {
                s.labels.iter().any(|l| {
                    l.key == "thread_id"
                        && l.value
                            == LabelValue::Num {
                                value: i64::from(tid),
                                unit: String::new(),
                            }
                })
            })
            .map(|s| s.values[0])
            .sum();
        // (Once, under four busy loops: 0. What the profile held then is in the message.)
        let threads: std::collections::BTreeSet<String> = p
            .samples
            .iter()
            .flat_map(|s| s.labels.iter())
            .filter(|l| l.key == "thread_id")
            .map(|l| format!("{:?}", l.value))
            .collect();
        assert!(
            on_worker >= 100,
            "only {on_worker} samples of the worker (tid {tid}); {} samples in all, threads \
             {threads:?}, comments {:?}; signals {}, lost {}",
            p.samples.len(),
            p.comments,
            super::cpu_signal::STATS
                .signals
                .load(std::sync::atomic::Ordering::Relaxed),
            super::cpu_signal::STATS
                .lost
                .load(std::sync::atomic::Ordering::Relaxed),
        );
    }
}
