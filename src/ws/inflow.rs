//! What the layer above has been handed but not yet consumed.
//!
//! Events for JS queue up in one buffer until the JS thread takes them. The
//! connection groups (group.rs) look at this count before each read round:
//! - above `limit` bytes they stop reading the connections that produced
//!   the backlog (more than [`Inflow::share`] each since the buffer was last
//!   taken: TCP flow control pushes back on them) and keep reading the
//!   others, so healthy peers keep answering pings; above twice the limit
//!   they stop reading altogether until the buffer is taken;
//! - with a large enough batch pending (group.rs, `COALESCE_FROM`) they
//!   first wait, briefly, for it to be taken, so that one read round
//!   collects every socket that became ready meanwhile instead of waking
//!   for each.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// 64 MiB: far above a healthy backlog (a few batches), far below trouble.
pub(crate) const DEFAULT_INFLOW_LIMIT: usize = 64 << 20;

pub(crate) struct Inflow {
    pending: AtomicUsize,
    /// Counts the times the buffer was taken: what a connection handed up
    /// in an older epoch is consumed.
    epoch: AtomicU32,
    limit: usize,
    lock: Mutex<()>,
    taken: Condvar,
}

impl Inflow {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            pending: AtomicUsize::new(0),
            epoch: AtomicU32::new(0),
            limit,
            lock: Mutex::new(()),
            taken: Condvar::new(),
        }
    }

    pub(crate) fn add(&self, bytes: usize) {
        self.pending.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Everything handed up so far was consumed.
    pub(crate) fn drained(&self) {
        self.pending.store(0, Ordering::Relaxed);
        self.epoch.fetch_add(1, Ordering::Relaxed);
        // Under the lock, so a waiter that saw the old count is already
        // waiting (it checks under the same lock) and gets the notice.
        let _g = self.lock.lock();
        self.taken.notify_all();
    }

    pub(crate) fn has_pending(&self) -> bool {
        self.pending.load(Ordering::Relaxed) > 0
    }

    /// Bytes handed up and not yet taken.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::Relaxed)
    }

    pub(crate) fn is_over(&self) -> bool {
        self.pending.load(Ordering::Relaxed) > self.limit
    }

    /// Over twice the limit: nobody is read until the buffer is taken.
    pub(crate) fn is_far_over(&self) -> bool {
        self.pending.load(Ordering::Relaxed) > self.limit.saturating_mul(2)
    }

    pub(crate) fn epoch(&self) -> u32 {
        self.epoch.load(Ordering::Relaxed)
    }

    /// What one connection may have handed up since the buffer was last
    /// taken before, over the limit, it is no longer read: 1/64 of the
    /// limit (1 MiB of the default 64 MiB), at least 64 KiB.
    pub(crate) fn share(&self) -> usize {
        (self.limit / 64).max(64 << 10)
    }

    /// Waits until everything pending was taken, or `max` passed.
    pub(crate) fn wait_taken(&self, max: Duration) {
        let mut g = self.lock.lock();
        if self.has_pending() {
            self.taken.wait_for(&mut g, max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn over_the_limit_only_above_it() {
        let inflow = Inflow::new(10);
        assert!(!inflow.has_pending());
        inflow.add(10);
        assert!(inflow.has_pending());
        assert!(!inflow.is_over(), "at the limit is not over it");
        inflow.add(1);
        assert!(inflow.is_over());
        inflow.drained();
        assert!(!inflow.has_pending() && !inflow.is_over());
    }

    #[test]
    fn a_waiter_resumes_when_the_batch_is_taken() {
        let inflow = Arc::new(Inflow::new(10));
        inflow.add(1);
        let waiter = std::thread::spawn({
            let i = inflow.clone();
            move || {
                let t = Instant::now();
                i.wait_taken(Duration::from_secs(30));
                t.elapsed()
            }
        });
        std::thread::sleep(Duration::from_millis(50));
        assert!(!waiter.is_finished(), "must wait while a batch is pending");
        inflow.drained();
        let waited = waiter.join().unwrap();
        assert!(waited < Duration::from_secs(10), "woken by drained(), not by the timeout: {waited:?}");
    }

    #[test]
    fn a_waiter_gives_up_after_max() {
        let inflow = Inflow::new(10);
        inflow.add(1);
        let t = Instant::now();
        inflow.wait_taken(Duration::from_millis(20));
        assert!(t.elapsed() >= Duration::from_millis(20));
        assert!(inflow.has_pending());
        // Nothing pending: no wait at all.
        inflow.drained();
        let t = Instant::now();
        inflow.wait_taken(Duration::from_secs(30));
        assert!(t.elapsed() < Duration::from_secs(10));
    }
}
