//! The threads of this process, from /proc/self/task.

use std::fs;

use parking_lot::Mutex;

use crate::Error;

/// Thread ids of this crate's own helper threads (the shutdown hook's, the clock
/// sampler's): wall-clock profiles leave them out. Thread dumps show them.
static OWN: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// Marks the calling thread as one of this crate's helpers until the guard drops.
pub(crate) fn register_own() -> OwnThread {
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { nix::libc::gettid() };
    OWN.lock().push(tid);
    OwnThread(tid)
}

/// The ids of this crate's helper threads now.
pub(crate) fn own() -> Vec<i32> {
    OWN.lock().clone()
}

/// Unregisters a helper thread when dropped.
pub(crate) struct OwnThread(i32);

impl Drop for OwnThread {
    fn drop(&mut self) {
        OWN.lock().retain(|&t| t != self.0);
    }
}

/// One thread as /proc describes it.
#[derive(Debug, Clone)]
pub(crate) struct Task {
    pub tid: i32,
    /// `comm`: at most 15 bytes, set by `std::thread::Builder::name` or `prctl`.
    pub name: String,
    /// The state letter of `State:` (R, S, D, T, t, Z, X, I).
    pub state: char,
    /// `SigBlk` of the thread: the signals it blocks (bit n-1 for signal n).
    pub blocked: u64,
    /// `SigPnd`: the signals pending for the thread alone.
    pub pending: u64,
}

impl Task {
    /// Whether the thread blocks `signal`.
    pub(crate) fn blocks(&self, signal: i32) -> bool {
        bit(self.blocked, signal)
    }

    /// Whether `signal` is pending for the thread.
    pub(crate) fn has_pending(&self, signal: i32) -> bool {
        bit(self.pending, signal)
    }
}

fn bit(set: u64, signal: i32) -> bool {
    (1..=64).contains(&signal) && set & (1u64 << (signal - 1)) != 0
}

/// Parses a `/proc/.../status` file.
pub(crate) fn parse_status(tid: i32, text: &str) -> Task {
    let mut task = Task {
        tid,
        name: String::new(),
        state: '?',
        blocked: 0,
        pending: 0,
    };
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Name" => task.name = value.to_owned(),
            "State" => task.state = value.chars().next().unwrap_or('?'),
            "SigBlk" => task.blocked = u64::from_str_radix(value, 16).unwrap_or(0),
            "SigPnd" => task.pending = u64::from_str_radix(value, 16).unwrap_or(0),
            _ => {}
        }
    }
    task
}

/// Whether thread `tid` of this process still exists.
pub(crate) fn exists(tid: i32) -> bool {
    std::path::Path::new(&format!("/proc/self/task/{tid}")).exists()
}

const DIR: &str = "/proc/self/task";

/// The ids of this process's threads, ascending (a directory listing: cheap).
pub(crate) fn tids() -> Result<Vec<i32>, Error> {
    let mut tids = Vec::new();
    for entry in fs::read_dir(DIR).map_err(|e| Error::io(DIR, e))? {
        let entry = entry.map_err(|e| Error::io(DIR, e))?;
        if let Some(tid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        {
            tids.push(tid);
        }
    }
    tids.sort_unstable();
    Ok(tids)
}

/// Thread `tid` as its `status` file says; `None` if it has exited.
pub(crate) fn read(tid: i32) -> Option<Task> {
    let text = fs::read_to_string(format!("{DIR}/{tid}/status")).ok()?;
    Some(parse_status(tid, &text))
}

/// Every thread of this process, by id (about 20 µs per thread: a `status` read each).
/// A thread that exits while it is being read is left out.
pub(crate) fn list() -> Result<Vec<Task>, Error> {
    Ok(tids()?.into_iter().filter_map(read).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status() {
        let text = "Name:\tworker-1\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t10\n\
                    SigPnd:\t0000000000000002\nSigBlk:\t0000000000000001\nSigIgn:\t0000000000001000\n";
        let t = parse_status(12, text);
        assert_eq!((t.tid, t.name.as_str(), t.state), (12, "worker-1", 'S'));
        assert!(t.blocks(1));
        assert!(!t.blocks(2));
        assert!(!t.blocks(0) && !t.blocks(65));
        assert!(t.has_pending(2) && !t.has_pending(1));
    }

    #[test]
    fn lists_this_thread() {
        // SAFETY: gettid has no preconditions.
        let me = unsafe { nix::libc::gettid() };
        let tasks = list().unwrap();
        let t = tasks
            .iter()
            .find(|t| t.tid == me)
            .expect("own thread listed");
        assert_eq!(t.state, 'R');
    }
}
