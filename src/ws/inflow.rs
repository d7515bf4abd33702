//! Bounds what the layer above has been handed but not yet consumed.
//!
//! Events for JS queue up in one buffer until the JS thread takes them. A
//! peer sending faster than JS handlers run would grow that buffer without
//! limit; instead, above `limit` bytes the connection groups stop reading
//! (so TCP flow control pushes back on the peers) until the buffer is taken.

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

/// 64 MiB: far above a healthy backlog (a few batches), far below trouble.
pub(crate) const DEFAULT_INFLOW_LIMIT: usize = 64 << 20;

pub(crate) struct Inflow {
    pending: AtomicUsize,
    limit: usize,
    resumed: Notify,
}

impl Inflow {
    pub(crate) fn new(limit: usize) -> Self {
        Self { pending: AtomicUsize::new(0), limit, resumed: Notify::new() }
    }

    pub(crate) fn add(&self, bytes: usize) {
        self.pending.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Everything handed up so far was consumed.
    pub(crate) fn drained(&self) {
        self.pending.store(0, Ordering::Relaxed);
        self.resumed.notify_waiters();
    }

    pub(crate) fn is_over(&self) -> bool {
        self.pending.load(Ordering::Relaxed) > self.limit
    }

    /// Returns once the backlog is at or below the limit.
    pub(crate) async fn below_limit(&self) {
        loop {
            // Register before checking, so a `drained` in between is not missed.
            let notified = self.resumed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if !self.is_over() {
                return;
            }
            notified.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn waits_while_over_and_resumes_on_drain() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(async {
            let inflow = Arc::new(Inflow::new(10));
            inflow.add(11);
            assert!(inflow.is_over());
            let waiter = tokio::spawn({
                let i = inflow.clone();
                async move { i.below_limit().await }
            });
            tokio::time::sleep(Duration::from_millis(20)).await;
            assert!(!waiter.is_finished(), "must wait while over the limit");
            inflow.drained();
            tokio::time::timeout(Duration::from_secs(1), waiter).await.unwrap().unwrap();
            // At the limit is not over it.
            inflow.add(10);
            tokio::time::timeout(Duration::from_secs(1), inflow.below_limit()).await.unwrap();
        });
    }
}
