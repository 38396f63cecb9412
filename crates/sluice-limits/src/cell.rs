//! The counter of one (API, environment): a fixed window per time unit with a
//! count per dimension.
//!
//! The state sits behind a short mutex: the check of every dimension and the
//! increment happen together, so two threads crossing a window boundary cannot
//! both see a fresh counter, and a multi-dimension admission is all or nothing.
//! The lock is never held across an await.

use crate::{Admission, Cost, Decision, Refusal};
use parking_lot::Mutex;
use sluice_core::{Dimension, EnvironmentLimit, TimeUnit};

/// Counts of the current window of one (API, environment).
#[derive(Debug, Default)]
pub struct CounterCell {
    state: Mutex<WindowState>,
}

#[derive(Debug, Default, Clone, Copy)]
struct WindowState {
    unit: TimeUnit,
    index: u64,
    used: [u64; 4],
}

/// A snapshot of a cell's current window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowUsage {
    /// The unit of the window.
    pub unit: TimeUnit,
    /// The window's index.
    pub window_index: u64,
    /// Used amount per dimension, indexed by [`Dimension::index`].
    pub used: [u64; 4],
}

impl WindowState {
    /// Move to the window of `now_ms` for `unit`. A unit change starts from
    /// zero; a window index never goes backwards, even if the clock does.
    fn roll(&mut self, unit: TimeUnit, now_ms: u64) {
        let index = unit.window_index(now_ms);
        if self.unit != unit {
            *self = WindowState {
                unit,
                index,
                used: [0; 4],
            };
        } else if index > self.index {
            self.index = index;
            self.used = [0; 4];
        }
    }
}

impl CounterCell {
    /// A cell with nothing counted.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decide whether `cost` fits every limited dimension of `limit` in the
    /// window of `now_ms`, and count it if so.
    ///
    /// A dimension with a cost of 0 (a token dimension admitted optimistically)
    /// has room while its count is below the limit.
    pub fn admit(&self, limit: &EnvironmentLimit, cost: Cost, now_ms: u64) -> Decision {
        let mut state = self.state.lock();
        state.roll(limit.unit, now_ms);
        for dimension in Dimension::ALL {
            let Some(cap) = limit.cap(dimension) else {
                continue;
            };
            let used = state.used[dimension.index()];
            let amount = cost.get(dimension);
            let fits = if amount == 0 {
                used < cap
            } else {
                used.saturating_add(amount) <= cap
            };
            if !fits {
                let window_end_ms = state.unit.window_end(state.index);
                return Decision::Refused(Refusal {
                    dimension,
                    limit: cap,
                    retry_after_ms: window_end_ms.saturating_sub(now_ms).max(1),
                    window_end_ms,
                });
            }
        }
        for (used, amount) in state.used.iter_mut().zip(cost.0) {
            *used = used.saturating_add(amount);
        }
        Decision::Admitted(Admission {
            unit: state.unit,
            window_index: state.index,
            cost,
        })
    }

    /// Give an admission back, when no byte of the request reached the
    /// backend. Only while its window is still the current one.
    pub fn refund(&self, admission: &Admission) {
        let mut state = self.state.lock();
        if state.unit == admission.unit && state.index == admission.window_index {
            for (used, amount) in state.used.iter_mut().zip(admission.cost.0) {
                *used = used.saturating_sub(amount);
            }
        }
    }

    /// Settle an admission with what it really cost, at completion.
    ///
    /// While the admission's window is still the current one, the difference
    /// between `actual` and what was counted is released or charged there.
    /// Once it has closed nothing is released, and any overrun is charged to
    /// the current window. With nothing counted at admission (optimistic
    /// tokens), this debits `actual` to the current window.
    pub fn settle(&self, admission: &Admission, actual: Cost, unit: TimeUnit, now_ms: u64) {
        let mut state = self.state.lock();
        state.roll(unit, now_ms);
        let same_window = state.unit == admission.unit && state.index == admission.window_index;
        for ((used, counted), real) in state.used.iter_mut().zip(admission.cost.0).zip(actual.0) {
            *used = if same_window {
                used.saturating_sub(counted).saturating_add(real)
            } else {
                used.saturating_add(real.saturating_sub(counted))
            };
        }
    }

    /// The current window's counts, and zero them (after they have been
    /// handed to the shared store).
    pub fn drain(&self, unit: TimeUnit, now_ms: u64) -> WindowUsage {
        let mut state = self.state.lock();
        state.roll(unit, now_ms);
        let usage = WindowUsage {
            unit: state.unit,
            window_index: state.index,
            used: state.used,
        };
        state.used = [0; 4];
        usage
    }

    /// The current window's counts as of `now_ms` for `unit`.
    pub fn usage(&self, unit: TimeUnit, now_ms: u64) -> WindowUsage {
        let mut state = self.state.lock();
        state.roll(unit, now_ms);
        WindowUsage {
            unit: state.unit,
            window_index: state.index,
            used: state.used,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(requests: u64, unit: TimeUnit) -> EnvironmentLimit {
        let mut limit = EnvironmentLimit {
            unit,
            ..Default::default()
        };
        limit.caps[Dimension::Requests.index()] = Some(requests);
        limit
    }

    fn admitted(decision: Decision) -> bool {
        matches!(decision, Decision::Admitted(_))
    }

    #[test]
    fn admits_up_to_the_limit_per_window() {
        let cell = CounterCell::new();
        let limit = limit(3, TimeUnit::Second);
        let results: Vec<bool> = (0..5)
            .map(|i| admitted(cell.admit(&limit, Cost::ONE_REQUEST, 10_000 + i)))
            .collect();
        assert_eq!(results, [true, true, true, false, false]);
        assert!(admitted(cell.admit(&limit, Cost::ONE_REQUEST, 11_000)));
    }

    #[test]
    fn refusal_reports_time_to_window_end() {
        let cell = CounterCell::new();
        let limit = limit(0, TimeUnit::Minute);
        let Decision::Refused(refusal) = cell.admit(&limit, Cost::ONE_REQUEST, 60_000 + 15_500)
        else {
            panic!("a limit of 0 forwards nothing");
        };
        assert_eq!(refusal.retry_after_ms, 44_500);
        assert_eq!(refusal.window_end_ms, 120_000);
        assert_eq!(refusal.dimension, Dimension::Requests);
    }

    #[test]
    fn unlimited_dimensions_are_not_checked() {
        let cell = CounterCell::new();
        let limit = EnvironmentLimit::default();
        assert!((0..1000).all(|_| admitted(cell.admit(&limit, Cost::ONE_REQUEST, 0))));
    }

    #[test]
    fn window_index_never_goes_backwards_when_the_clock_does() {
        let cell = CounterCell::new();
        let limit = limit(2, TimeUnit::Second);
        assert!(admitted(cell.admit(&limit, Cost::ONE_REQUEST, 5_000)));
        assert!(admitted(cell.admit(&limit, Cost::ONE_REQUEST, 5_000)));
        // The clock steps back into the previous window: still full.
        let decision = cell.admit(&limit, Cost::ONE_REQUEST, 4_500);
        assert!(!admitted(decision));
        let Decision::Refused(refusal) = decision else {
            unreachable!()
        };
        assert_eq!(refusal.window_end_ms, 6_000);
    }

    #[test]
    fn lowering_a_limit_keeps_the_current_count() {
        let cell = CounterCell::new();
        for _ in 0..5 {
            cell.admit(&limit(10, TimeUnit::Second), Cost::ONE_REQUEST, 100);
        }
        assert!(!admitted(cell.admit(
            &limit(5, TimeUnit::Second),
            Cost::ONE_REQUEST,
            200
        )));
        assert!(admitted(cell.admit(
            &limit(6, TimeUnit::Second),
            Cost::ONE_REQUEST,
            300
        )));
    }

    #[test]
    fn a_unit_change_starts_from_zero() {
        let cell = CounterCell::new();
        let per_second = limit(1, TimeUnit::Second);
        assert!(admitted(cell.admit(&per_second, Cost::ONE_REQUEST, 100)));
        assert!(!admitted(cell.admit(&per_second, Cost::ONE_REQUEST, 200)));
        let per_minute = limit(1, TimeUnit::Minute);
        assert!(admitted(cell.admit(&per_minute, Cost::ONE_REQUEST, 300)));
        assert!(!admitted(cell.admit(&per_minute, Cost::ONE_REQUEST, 5_000)));
    }

    #[test]
    fn refund_returns_room_only_in_the_same_window() {
        let cell = CounterCell::new();
        let limit = limit(1, TimeUnit::Second);
        let Decision::Admitted(first) = cell.admit(&limit, Cost::ONE_REQUEST, 100) else {
            panic!("room for one");
        };
        cell.refund(&first);
        let Decision::Admitted(second) = cell.admit(&limit, Cost::ONE_REQUEST, 200) else {
            panic!("the refund made room");
        };
        // The next window has begun: refunding the old admission changes nothing.
        assert!(admitted(cell.admit(&limit, Cost::ONE_REQUEST, 1_100)));
        cell.refund(&second);
        assert!(!admitted(cell.admit(&limit, Cost::ONE_REQUEST, 1_200)));
    }

    #[test]
    fn multi_dimension_admission_is_all_or_nothing() {
        let cell = CounterCell::new();
        let mut limit = limit(10, TimeUnit::Minute);
        limit.caps[Dimension::TotalTokens.index()] = Some(100);
        let big = Cost([1, 0, 0, 80]);
        assert!(admitted(cell.admit(&limit, big, 0)));
        assert!(!admitted(cell.admit(&limit, big, 1)));
        // The refused admission did not take a request either.
        assert_eq!(
            cell.usage(TimeUnit::Minute, 2).used,
            [1, 0, 0, 80],
            "nothing of the refused cost was counted"
        );
    }

    fn token_limit(total: u64) -> EnvironmentLimit {
        let mut limit = EnvironmentLimit {
            unit: TimeUnit::Minute,
            ..Default::default()
        };
        limit.caps[Dimension::TotalTokens.index()] = Some(total);
        limit
    }

    fn admit_ok(cell: &CounterCell, limit: &EnvironmentLimit, cost: Cost, now: u64) -> Admission {
        match cell.admit(limit, cost, now) {
            Decision::Admitted(admission) => admission,
            other => panic!("not admitted: {other:?}"),
        }
    }

    #[test]
    fn settling_in_the_same_window_releases_the_unused_reservation() {
        let cell = CounterCell::new();
        let limit = token_limit(1_000);
        let admission = admit_ok(&cell, &limit, Cost([1, 100, 500, 600]), 0);
        cell.settle(&admission, Cost([1, 90, 10, 100]), TimeUnit::Minute, 5_000);
        assert_eq!(cell.usage(TimeUnit::Minute, 5_000).used, [1, 90, 10, 100]);
    }

    #[test]
    fn settling_in_the_same_window_charges_an_overrun() {
        let cell = CounterCell::new();
        let limit = token_limit(1_000);
        let admission = admit_ok(&cell, &limit, Cost([1, 100, 0, 100]), 0);
        cell.settle(&admission, Cost([1, 150, 20, 170]), TimeUnit::Minute, 1);
        assert_eq!(cell.usage(TimeUnit::Minute, 1).used, [1, 150, 20, 170]);
    }

    #[test]
    fn settling_after_the_window_closed_charges_only_the_overrun_to_the_current_one() {
        let cell = CounterCell::new();
        let limit = token_limit(1_000);
        let admission = admit_ok(&cell, &limit, Cost([1, 100, 100, 200]), 0);
        // Next minute: nothing is released, the overrun lands here.
        cell.settle(
            &admission,
            Cost([1, 100, 130, 230]),
            TimeUnit::Minute,
            61_000,
        );
        assert_eq!(cell.usage(TimeUnit::Minute, 61_000).used, [0, 0, 30, 30]);
    }

    #[test]
    fn optimistic_debit_lands_in_the_current_window_and_then_refuses() {
        let cell = CounterCell::new();
        let limit = token_limit(100);
        let admission = admit_ok(&cell, &limit, Cost::ONE_REQUEST, 0);
        // The response completes three windows later (unit MINUTE here).
        cell.settle(
            &admission,
            Cost([1, 60, 60, 120]),
            TimeUnit::Minute,
            180_500,
        );
        assert!(!admitted(cell.admit(&limit, Cost::ONE_REQUEST, 180_600)));
    }

    #[test]
    fn zero_cost_dimension_has_room_while_below_the_limit() {
        let cell = CounterCell::new();
        let mut limit = EnvironmentLimit::default();
        limit.caps[Dimension::CompletionTokens.index()] = Some(10);
        assert!(admitted(cell.admit(&limit, Cost([1, 0, 9, 0]), 0)));
        assert!(admitted(cell.admit(&limit, Cost::ONE_REQUEST, 0)));
        assert!(admitted(cell.admit(&limit, Cost([1, 0, 1, 0]), 0)));
        assert!(!admitted(cell.admit(&limit, Cost::ONE_REQUEST, 0)));
    }
}
