//! The `leased` strategy's local half: a block of one window's budget that
//! this node claimed from Redis and admits from without a round trip.
//!
//! A block belongs to one window and is spent only until a guard margin
//! before the window's end; a grant for a later window voids what is left.
//! Blocks are sized from this node's own rate (a quarter of what it admitted
//! in its last busy window) and refilled in the background before they run
//! out, one claim in flight per key.

use crate::Cost;
use sluice_core::{Dimension, EnvironmentLimit, TimeUnit};

/// Guard margin before a window's end in which a block is no longer spent.
pub(crate) const GUARD_MS: u64 = 5;

/// A claimed block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Lease {
    pub(crate) unit: TimeUnit,
    pub(crate) caps: [Option<u64>; 4],
    pub(crate) window: u64,
    /// Redis time after which the block is not spent.
    pub(crate) spend_until_ms: u64,
    pub(crate) window_end_ms: u64,
    /// Still unspent, per dimension.
    pub(crate) left: [u64; 4],
    /// Granted in total, per dimension (for sizing).
    pub(crate) granted: [u64; 4],
}

/// Per-key lease state.
#[derive(Debug, Default)]
pub(crate) struct LeaseState {
    pub(crate) lease: Option<Lease>,
    pub(crate) claim_in_flight: bool,
    /// What this node admitted in the window of `rate_window`, and in the
    /// busiest recent window, for block sizing.
    pub(crate) rate_window: u64,
    pub(crate) admitted_in_window: u64,
    pub(crate) recent_rate: u64,
}

impl LeaseState {
    /// The usable lease for `limit` at Redis time `now`, if any.
    pub(crate) fn usable(&mut self, limit: &EnvironmentLimit, now: u64) -> Option<&mut Lease> {
        let lease = self.lease.as_mut()?;
        let current = lease.unit == limit.unit
            && lease.caps == limit.caps
            && limit.unit.window_index(now) == lease.window
            && now < lease.spend_until_ms;
        current.then_some(lease)
    }

    /// Count one admission for block sizing.
    pub(crate) fn note_admitted(&mut self, window: u64) {
        if window != self.rate_window {
            self.recent_rate =
                self.recent_rate.max(self.admitted_in_window) / 2 + self.admitted_in_window / 2;
            self.rate_window = window;
            self.admitted_in_window = 0;
        }
        self.admitted_in_window += 1;
    }

    /// The block size to ask for, in requests; token dimensions scale it by
    /// the per-request cost.
    pub(crate) fn block(&self) -> u64 {
        (self.recent_rate.max(self.admitted_in_window) / 4).max(1)
    }
}

impl Lease {
    /// Spend `cost` from the block if every limited dimension has it.
    pub(crate) fn try_spend(&mut self, cost: Cost, seen_used: &[u64; 4]) -> bool {
        for dimension in Dimension::ALL {
            let i = dimension.index();
            let Some(cap) = self.caps[i] else {
                continue;
            };
            let amount = cost.0[i];
            let fits = if amount == 0 {
                seen_used[i] < cap // optimistic tokens: below the limit
            } else {
                self.left[i] >= amount
            };
            if !fits {
                return false;
            }
        }
        for (left, amount) in self.left.iter_mut().zip(cost.0) {
            *left = left.saturating_sub(amount);
        }
        true
    }

    /// What is missing from the block to admit `cost`.
    pub(crate) fn missing(&self, cost: Cost) -> [u64; 4] {
        std::array::from_fn(|i| match self.caps[i] {
            Some(_) => cost.0[i].saturating_sub(self.left[i]),
            None => 0,
        })
    }

    /// True when the block is low enough to refill in the background.
    pub(crate) fn low(&self, block: u64) -> bool {
        (0..4)
            .any(|i| self.caps[i].is_some() && self.left[i] * 2 < block.max(1) * self.unit_cost(i))
    }

    fn unit_cost(&self, i: usize) -> u64 {
        if i == 0 {
            1
        } else {
            (self.granted[i] / self.granted[0].max(1)).max(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(left: u64) -> Lease {
        Lease {
            unit: TimeUnit::Second,
            caps: [Some(100), None, None, None],
            window: 1,
            spend_until_ms: 1_995,
            window_end_ms: 2_000,
            left: [left, 0, 0, 0],
            granted: [left, 0, 0, 0],
        }
    }

    #[test]
    fn spends_only_what_the_block_holds() {
        let mut lease = lease(2);
        assert!(lease.try_spend(Cost::ONE_REQUEST, &[0; 4]));
        assert!(lease.try_spend(Cost::ONE_REQUEST, &[0; 4]));
        assert!(!lease.try_spend(Cost::ONE_REQUEST, &[0; 4]));
        assert_eq!(lease.missing(Cost::ONE_REQUEST), [1, 0, 0, 0]);
    }

    #[test]
    fn a_block_is_not_spent_in_the_guard_margin_or_another_window() {
        let mut state = LeaseState {
            lease: Some(lease(5)),
            ..Default::default()
        };
        let mut limit = EnvironmentLimit::default();
        limit.caps[0] = Some(100);
        assert!(state.usable(&limit, 1_500).is_some());
        assert!(state.usable(&limit, 1_996).is_none(), "guard margin");
        assert!(state.usable(&limit, 2_100).is_none(), "next window");
        limit.caps[0] = Some(50);
        assert!(
            state.usable(&limit, 1_500).is_none(),
            "a changed limit drops the block"
        );
    }

    #[test]
    fn block_size_follows_the_nodes_own_rate() {
        let mut state = LeaseState::default();
        for _ in 0..240 {
            state.note_admitted(7);
        }
        state.note_admitted(8);
        assert_eq!(state.block(), 60);
    }
}
