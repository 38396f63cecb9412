//! The circuit breaker in front of Redis: after repeated failures requests
//! stop waiting on Redis and the fallback policy applies; after consecutive
//! successful background probes, never sooner than a minimum open time
//! (hysteresis, so a flapping Redis does not flip every request), it may
//! close, which its owner does once recovery is done.

use parking_lot::Mutex;

/// Failures in a row that open the breaker.
pub const FAILURES_TO_OPEN: u32 = 3;
/// Successful probes in a row that close it.
pub const PROBES_TO_CLOSE: u32 = 2;
/// Minimum time it stays open, in milliseconds.
pub const MIN_OPEN_MS: u64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { since_ms: u64, successes: u32 },
}

/// A breaker; times are the limiter clock's milliseconds.
#[derive(Debug)]
pub struct Breaker {
    state: Mutex<State>,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }
}

impl Breaker {
    /// True while requests must not use Redis.
    pub fn is_open(&self) -> bool {
        matches!(*self.state.lock(), State::Open { .. })
    }

    /// A request's Redis call succeeded.
    pub fn record_success(&self) {
        let mut state = self.state.lock();
        if let State::Closed { failures } = &mut *state {
            *failures = 0;
        }
    }

    /// A request's Redis call failed or timed out; true when this opened it.
    pub fn record_failure(&self, now_ms: u64) -> bool {
        let mut state = self.state.lock();
        match &mut *state {
            State::Closed { failures } => {
                *failures += 1;
                if *failures >= FAILURES_TO_OPEN {
                    *state = State::Open {
                        since_ms: now_ms,
                        successes: 0,
                    };
                    return true;
                }
                false
            }
            State::Open { .. } => false,
        }
    }

    /// Open it at once (Redis is known to be unreachable).
    pub fn open(&self, now_ms: u64) {
        let mut state = self.state.lock();
        if let State::Closed { .. } = *state {
            *state = State::Open {
                since_ms: now_ms,
                successes: 0,
            };
        }
    }

    /// A background probe's result; true when the breaker may close: the
    /// caller then runs recovery and [`Breaker::close`]s it, so that requests
    /// count in Redis only once what was admitted alone is back there.
    pub fn record_probe(&self, ok: bool, now_ms: u64) -> bool {
        let mut state = self.state.lock();
        let State::Open {
            since_ms,
            successes,
        } = &mut *state
        else {
            return false;
        };
        if !ok {
            *successes = 0;
            return false;
        }
        *successes += 1;
        *successes >= PROBES_TO_CLOSE && now_ms.saturating_sub(*since_ms) >= MIN_OPEN_MS
    }

    /// Close it: requests use Redis again.
    pub fn close(&self) {
        *self.state.lock() = State::Closed { failures: 0 };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_repeated_failures_only() {
        let breaker = Breaker::default();
        assert!(!breaker.record_failure(0));
        breaker.record_success();
        assert!(!breaker.record_failure(1));
        assert!(!breaker.record_failure(2));
        assert!(!breaker.is_open());
        assert!(breaker.record_failure(3));
        assert!(breaker.is_open());
    }

    #[test]
    fn may_close_after_consecutive_probes_and_the_minimum_open_time() {
        let breaker = Breaker::default();
        breaker.open(10_000);
        assert!(!breaker.record_probe(true, 10_100));
        assert!(!breaker.record_probe(true, 10_200), "too soon");
        assert!(breaker.is_open());
        assert!(
            !breaker.record_probe(false, 11_000),
            "a failure resets the count"
        );
        assert!(!breaker.record_probe(true, 11_100));
        assert!(breaker.record_probe(true, 11_200));
        assert!(breaker.is_open(), "open until its owner closes it");
        breaker.close();
        assert!(!breaker.is_open());
    }
}
