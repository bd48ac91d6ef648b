//! Stop signal shared by the pacer thread, the lanes and the collector: the first request stops
//! scheduling and lets requests in flight finish; a forced stop ends the run at once.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct StopSignal {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    /// 0 running, 1 stopping, 2 forced.
    state: AtomicU8,
    notify: Notify,
    /// When [`StopSignal::finish`] ended the plan early.
    finished_at: Mutex<Option<Instant>>,
}

impl StopSignal {
    pub fn new() -> StopSignal {
        StopSignal::default()
    }

    /// Stops scheduling new requests; a second call forces the stop.
    pub fn escalate(&self) {
        let previous = self.inner.state.fetch_add(1, Ordering::AcqRel).min(1);
        self.inner.state.store(previous + 1, Ordering::Release);
        self.inner.notify.notify_waiters();
    }

    /// Stops scheduling new requests (idempotent).
    pub fn request_stop(&self) {
        let _ = self
            .inner
            .state
            .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire);
        self.inner.notify.notify_waiters();
    }

    /// Ends the plan early on purpose (a sweep step whose windows already agree): scheduling
    /// stops as with [`StopSignal::request_stop`], but the run is complete, not interrupted,
    /// and its measured window ends now.
    pub fn finish(&self) {
        self.inner
            .finished_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Instant::now);
        self.request_stop();
    }

    /// When [`StopSignal::finish`] was first called.
    pub fn finished_at(&self) -> Option<Instant> {
        *self
            .inner
            .finished_at
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_stopping(&self) -> bool {
        self.inner.state.load(Ordering::Acquire) >= 1
    }

    pub fn is_forced(&self) -> bool {
        self.inner.state.load(Ordering::Acquire) >= 2
    }

    /// Completes at the next state change.
    pub async fn stopped(&self) {
        self.inner.notify.notified().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escalates_twice() {
        let stop = StopSignal::new();
        assert!(!stop.is_stopping());
        stop.escalate();
        assert!(stop.is_stopping());
        assert!(!stop.is_forced());
        stop.escalate();
        assert!(stop.is_forced());
        stop.escalate();
        assert!(stop.is_forced());
    }
}
