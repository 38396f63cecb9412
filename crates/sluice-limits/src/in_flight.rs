//! A cap on requests in flight to one backend environment on this node
//! (`maxInFlight`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The number of requests in flight to one (API, environment).
#[derive(Debug, Default)]
pub struct InFlight {
    count: AtomicU64,
}

/// One request in flight; dropping it frees the slot.
#[derive(Debug)]
pub struct InFlightPermit {
    owner: Arc<InFlight>,
}

impl InFlight {
    /// Take a slot if fewer than `cap` are taken (`None` cap: always).
    pub fn try_acquire(self: &Arc<Self>, cap: Option<u64>) -> Option<InFlightPermit> {
        let cap = cap.unwrap_or(u64::MAX);
        self.count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < cap).then_some(n + 1)
            })
            .ok()
            .map(|_| InFlightPermit {
                owner: Arc::clone(self),
            })
    }

    /// Requests in flight now.
    pub fn current(&self) -> u64 {
        self.count.load(Ordering::Acquire)
    }
}

impl Drop for InFlightPermit {
    fn drop(&mut self) {
        self.owner.count.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_concurrent_permits_and_frees_on_drop() {
        let in_flight = Arc::new(InFlight::default());
        let first = in_flight.try_acquire(Some(2)).unwrap();
        let _second = in_flight.try_acquire(Some(2)).unwrap();
        assert!(in_flight.try_acquire(Some(2)).is_none());
        drop(first);
        assert!(in_flight.try_acquire(Some(2)).is_some());
        assert_eq!(in_flight.current(), 1);
    }
}
