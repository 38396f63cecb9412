//! Time for the limiter: epoch milliseconds that never go backwards.
//!
//! Windows are aligned to wall-clock unit boundaries, but a wall clock can
//! step back (NTP); [`SystemClock`] reads the wall clock once and advances it
//! with the monotonic clock, so window indexes never decrease on a node.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A source of the current time in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// Now, in epoch milliseconds; never less than an earlier answer.
    fn now_ms(&self) -> u64;
}

/// The real clock: wall time at start, advanced monotonically.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    start_wall_ms: u64,
    start: Instant,
}

impl SystemClock {
    /// A clock anchored to the wall time now.
    pub fn new() -> Self {
        let start_wall_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        Self {
            start_wall_ms,
            start: Instant::now(),
        }
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        self.start_wall_ms + self.start.elapsed().as_millis() as u64
    }
}

/// A clock tests move by hand. Clones share the same time.
#[derive(Debug, Clone, Default)]
pub struct FakeClock {
    now_ms: Arc<AtomicU64>,
}

impl FakeClock {
    /// A fake clock showing `now_ms`.
    pub fn at(now_ms: u64) -> Self {
        Self {
            now_ms: Arc::new(AtomicU64::new(now_ms)),
        }
    }

    /// Move the clock forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.now_ms.fetch_add(ms, Ordering::SeqCst);
    }

    /// Set the clock; tests use this to step it backwards too.
    pub fn set(&self, now_ms: u64) {
        self.now_ms.store(now_ms, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_close_to_wall_time_and_monotonic() {
        let clock = SystemClock::new();
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let first = clock.now_ms();
        assert!(first.abs_diff(wall) < 1_000);
        assert!(clock.now_ms() >= first);
    }

    #[test]
    fn fake_clock_clones_share_time() {
        let clock = FakeClock::at(5);
        let other = clock.clone();
        clock.advance(10);
        assert_eq!(other.now_ms(), 15);
    }
}
