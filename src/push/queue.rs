//! The upload queue and the uploader thread: bounded (the oldest upload is dropped, and
//! counted, when a new one does not fit), retried with exponential backoff while the
//! server is unreachable or answers 5xx/429, never growing beyond its limits.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// What an agent has done (see `Agent::stats`, `push::stats`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushStats {
    /// Intervals collected.
    pub intervals: u64,
    /// Uploads the server accepted.
    pub uploads: u64,
    /// Bytes of accepted uploads (multipart bodies).
    pub bytes_sent: u64,
    /// Attempts that failed and were retried (or dropped at the flush deadline).
    pub failed_attempts: u64,
    /// Uploads the server refused for good (a 4xx answer).
    pub rejected: u64,
    /// Uploads dropped: the queue was full (server slow or down), or still queued when
    /// the flush deadline passed.
    pub dropped: u64,
    /// Uploads waiting now, and their bytes.
    pub queued: usize,
    /// Bytes waiting now.
    pub queued_bytes: usize,
    /// An upload is being sent now (taken from the queue, no answer yet).
    pub sending: bool,
    /// The latest failure (an upload's or a kind's), if any.
    pub last_error: Option<String>,
}

/// One profile ready to send.
pub(crate) struct Upload {
    /// The kind's word (`cpu`), for stats and errors.
    pub kind: &'static str,
    /// The path (and query) after the server's base URL: `/ingest?name=...` for
    /// Pyroscope, `/v1development/profiles` for OTLP.
    pub target: String,
    pub content_type: String,
    /// Headers of this kind of upload (OTLP's development-version header).
    pub headers: &'static [(&'static str, &'static str)],
    pub body: Vec<u8>,
}

/// The first retry waits this long; each failure doubles it, up to [`MAX_BACKOFF`].
pub(crate) const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest wait between two attempts.
pub(crate) const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// What the collector and the uploader share.
pub(crate) struct Queue {
    pub(crate) state: Mutex<State>,
    pub(crate) wake: Condvar,
    pub(crate) limit_uploads: usize,
    pub(crate) limit_bytes: usize,
}

pub(crate) struct State {
    pub(crate) items: VecDeque<Upload>,
    pub(crate) bytes: usize,
    pub(crate) stats: PushStats,
    /// Drops since the last collection said so (the next profiles' comments).
    pub(crate) unreported_drops: u64,
    /// Set by `stop`: upload what is queued until this instant, then quit.
    pub(crate) flush_until: Option<Instant>,
    /// The uploader has taken an upload and has no answer for it yet.
    pub(crate) sending: bool,
}

impl State {
    /// The stats, with what is queued now.
    pub(crate) fn stats(&self) -> PushStats {
        PushStats {
            queued: self.items.len(),
            queued_bytes: self.bytes,
            sending: self.sending,
            ..self.stats.clone()
        }
    }
}

impl Queue {
    pub(crate) fn new(limit_uploads: usize, limit_bytes: usize) -> Arc<Queue> {
        Arc::new(Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                bytes: 0,
                stats: PushStats::default(),
                unreported_drops: 0,
                flush_until: None,
                sending: false,
            }),
            wake: Condvar::new(),
            limit_uploads: limit_uploads.max(1),
            limit_bytes: limit_bytes.max(1),
        })
    }

    /// Adds an upload, dropping the oldest ones that keep it from fitting (an upload
    /// larger than the byte limit alone is dropped itself).
    pub(crate) fn push(&self, upload: Upload) {
        let mut s = self.state.lock();
        if upload.body.len() > self.limit_bytes {
            s.stats.dropped += 1;
            s.unreported_drops += 1;
            s.stats.last_error = Some(format!(
                "a {} upload of {} bytes is larger than the queue's limit of {} bytes",
                upload.kind,
                upload.body.len(),
                self.limit_bytes
            ));
            return;
        }
        while !s.items.is_empty()
            && (s.items.len() >= self.limit_uploads
                || s.bytes + upload.body.len() > self.limit_bytes)
        {
            let old = s.items.pop_front().expect("not empty");
            s.bytes -= old.body.len();
            s.stats.dropped += 1;
            s.unreported_drops += 1;
        }
        s.bytes += upload.body.len();
        s.items.push_back(upload);
        drop(s);
        self.wake.notify_all();
    }

    /// Puts back an upload that failed, at the front, if it still fits (else it is
    /// dropped: newer profiles matter more).
    fn put_back(&self, s: &mut State, upload: Upload) {
        if s.items.len() < self.limit_uploads && s.bytes + upload.body.len() <= self.limit_bytes {
            s.bytes += upload.body.len();
            s.items.push_front(upload);
        } else {
            s.stats.dropped += 1;
            s.unreported_drops += 1;
        }
    }
}

/// How an attempt ended.
pub(crate) enum Outcome {
    Sent,
    /// Worth retrying (connection refused, timeout, 5xx, 429, and 422: Pyroscope's
    /// answer while its ingester is not ready, "at least 1 live replicas required").
    Retry(String),
    /// The server refused this upload for good (400, 401, 403, 404, 413...): dropped,
    /// counted as rejected.
    Rejected(String),
}

/// The uploader thread's loop. `send` makes one attempt.
pub(crate) fn run(queue: &Queue, mut send: impl FnMut(&Upload) -> Outcome) {
    let mut backoff = FIRST_BACKOFF;
    let mut s = queue.state.lock();
    loop {
        let flushing = s.flush_until;
        if let Some(deadline) = flushing
            && (s.items.is_empty() || Instant::now() >= deadline)
        {
            let left = s.items.len() as u64;
            if left > 0 {
                s.stats.dropped += left;
                let why = match s.stats.last_error.take() {
                    Some(e) => format!(
                        "{left} uploads still queued when the flush deadline passed; the last failure: {e}"
                    ),
                    None => format!("{left} uploads still queued when the flush deadline passed"),
                };
                s.stats.last_error = Some(why);
                s.items.clear();
                s.bytes = 0;
            }
            return;
        }
        let Some(upload) = s.items.pop_front() else {
            queue.wake.wait(&mut s);
            continue;
        };
        s.bytes -= upload.body.len();
        s.sending = true;
        drop(s);
        let outcome = send(&upload);
        s = queue.state.lock();
        s.sending = false;
        match outcome {
            Outcome::Sent => {
                s.stats.uploads += 1;
                s.stats.bytes_sent += upload.body.len() as u64;
                backoff = FIRST_BACKOFF;
            }
            Outcome::Rejected(why) => {
                s.stats.rejected += 1;
                s.stats.last_error = Some(format!("{} upload rejected: {why}", upload.kind));
                backoff = FIRST_BACKOFF;
            }
            Outcome::Retry(why) => {
                s.stats.failed_attempts += 1;
                s.stats.last_error = Some(format!("{} upload failed: {why}", upload.kind));
                queue.put_back(&mut s, upload);
                // Wait before the next attempt (a stop's flush or a new upload does not
                // cut the wait short, except that the flush deadline bounds it).
                let mut until = Instant::now() + backoff;
                if let Some(deadline) = s.flush_until {
                    until = until.min(deadline);
                }
                while Instant::now() < until {
                    if queue.wake.wait_until(&mut s, until).timed_out() {
                        break;
                    }
                    if let Some(deadline) = s.flush_until {
                        until = until.min(deadline);
                    }
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(n: usize) -> Upload {
        Upload {
            kind: "cpu",
            target: format!("/n={n}"),
            content_type: String::new(),
            headers: &[],
            body: vec![0; n],
        }
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_counts_it() {
        let q = Queue::new(3, 1000);
        for n in 1..=5 {
            q.push(upload(n));
        }
        let s = q.state.lock();
        let left: Vec<usize> = s.items.iter().map(|u| u.body.len()).collect();
        assert_eq!(left, [3, 4, 5]);
        assert_eq!(s.stats.dropped, 2);
        assert_eq!(s.unreported_drops, 2);
        assert_eq!(s.bytes, 12);
    }

    #[test]
    fn the_byte_limit_holds_and_an_oversized_upload_is_dropped_alone() {
        let q = Queue::new(100, 10);
        q.push(upload(4));
        q.push(upload(4));
        q.push(upload(4)); // 12 > 10: the first goes
        q.push(upload(11)); // larger than the limit: dropped itself
        let s = q.state.lock();
        assert_eq!(s.items.len(), 2);
        assert_eq!(s.bytes, 8);
        assert_eq!(s.stats.dropped, 2);
        assert!(s.stats.last_error.as_deref().unwrap().contains("larger"));
    }

    #[test]
    fn failures_are_retried_in_order_and_the_flush_deadline_ends_the_loop() {
        let q = Queue::new(10, 1000);
        q.push(upload(1));
        q.push(upload(2));
        let mut attempts = Vec::new();
        let mut failures_left = 2;
        q.state.lock().flush_until = Some(Instant::now() + Duration::from_secs(30));
        run(&q, |u| {
            attempts.push(u.body.len());
            if failures_left > 0 {
                failures_left -= 1;
                Outcome::Retry("refused".into())
            } else {
                Outcome::Sent
            }
        });
        assert_eq!(attempts, [1, 1, 1, 2]);
        let s = q.state.lock();
        assert_eq!(s.stats.uploads, 2);
        assert_eq!(s.stats.failed_attempts, 2);
        assert_eq!(s.stats.dropped, 0);
    }

    #[test]
    fn what_a_dead_server_leaves_at_the_deadline_is_dropped_and_counted() {
        let q = Queue::new(10, 1000);
        q.push(upload(1));
        q.push(upload(2));
        q.state.lock().flush_until = Some(Instant::now() + Duration::from_millis(300));
        run(&q, |_| Outcome::Retry("connection refused".into()));
        let s = q.state.lock();
        assert_eq!(s.stats.uploads, 0);
        assert_eq!(s.stats.dropped, 2);
        assert!(s.items.is_empty());
    }

    #[test]
    fn rejected_uploads_are_not_retried() {
        let q = Queue::new(10, 1000);
        q.push(upload(1));
        q.state.lock().flush_until = Some(Instant::now() + Duration::from_secs(30));
        let mut attempts = 0;
        run(&q, |_| {
            attempts += 1;
            Outcome::Rejected("400 bad labels".into())
        });
        assert_eq!(attempts, 1);
        assert_eq!(q.state.lock().stats.rejected, 1);
    }
}
