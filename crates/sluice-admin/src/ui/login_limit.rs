//! Login attempt limiting for the Publisher UI's login form.
//!
//! After [`MAX_FAILURES`] wrong passwords for one user name within
//! [`WINDOW`], further attempts for that name are refused (429) until the
//! window that started with the first failure ends, without verifying the
//! password. A success clears the count. The table is bounded: past
//! [`MAX_TRACKED`] names, finished windows go first, then everything.
//!
//! Keyed by user name, not client address: the admin listener sits on a
//! private address, and the argon2 verifications themselves are already
//! bounded in number (see `auth`). Time is passed in for tests.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Wrong passwords allowed per user name and window.
pub(crate) const MAX_FAILURES: u32 = 5;
/// Length of the failure window, from the first failure.
pub(crate) const WINDOW: Duration = Duration::from_secs(5 * 60);
/// Most user names tracked at once.
const MAX_TRACKED: usize = 10_000;

struct Failures {
    count: u32,
    since: Instant,
}

/// Failed login attempts per user name.
#[derive(Default)]
pub(crate) struct LoginLimiter {
    failures: Mutex<HashMap<String, Failures>>,
}

impl LoginLimiter {
    /// `Err(wait)` when `username` must not try again before `wait` has passed.
    pub(crate) fn check(&self, username: &str, now: Instant) -> Result<(), Duration> {
        let failures = self.failures.lock();
        match failures.get(&normalise(username)) {
            Some(f) if f.count >= MAX_FAILURES && now < f.since + WINDOW => {
                Err(f.since + WINDOW - now)
            }
            _ => Ok(()),
        }
    }

    /// Count a wrong password for `username`.
    pub(crate) fn failed(&self, username: &str, now: Instant) {
        let mut failures = self.failures.lock();
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, f| now < f.since + WINDOW);
            if failures.len() >= MAX_TRACKED {
                failures.clear();
            }
        }
        let entry = failures.entry(normalise(username)).or_insert(Failures {
            count: 0,
            since: now,
        });
        if now >= entry.since + WINDOW {
            *entry = Failures {
                count: 0,
                since: now,
            };
        }
        entry.count += 1;
    }

    /// Forget the failures of `username` (it logged in).
    pub(crate) fn succeeded(&self, username: &str) {
        self.failures.lock().remove(&normalise(username));
    }
}

fn normalise(username: &str) -> String {
    username.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_refused_after_the_allowed_failures_until_the_window_ends() {
        let limiter = LoginLimiter::default();
        let start = Instant::now();
        for _ in 0..MAX_FAILURES {
            assert!(limiter.check("admin", start).is_ok());
            limiter.failed("admin", start);
        }
        let wait = limiter.check("Admin", start + Duration::from_secs(60));
        assert_eq!(wait, Err(WINDOW - Duration::from_secs(60)));
        assert!(limiter.check("other", start).is_ok(), "names are separate");
        assert!(limiter.check("admin", start + WINDOW).is_ok());
    }

    #[test]
    fn a_success_clears_the_failures() {
        let limiter = LoginLimiter::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            limiter.failed("admin", now);
        }
        limiter.succeeded("admin");
        limiter.failed("admin", now);
        assert!(limiter.check("admin", now).is_ok());
    }

    #[test]
    fn failures_of_a_finished_window_do_not_count() {
        let limiter = LoginLimiter::default();
        let start = Instant::now();
        for _ in 0..MAX_FAILURES - 1 {
            limiter.failed("admin", start);
        }
        limiter.failed("admin", start + WINDOW);
        assert!(limiter.check("admin", start + WINDOW).is_ok());
    }
}
