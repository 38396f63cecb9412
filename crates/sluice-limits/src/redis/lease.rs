//! The `leased` strategy's local half: a block of one window's budget that
//! this node claimed from Redis and admits from without a round trip, and
//! the sizing of the claims that fill it.
//!
//! A block belongs to one window and is spent only until a guard margin
//! before the window's end; a grant for a later window voids what is left.
//! Blocks are sized from this node's own rate (a quarter of what it admits in
//! a window), but never more than it expects to spend before it stops
//! spending the block, so that little budget is stranded at the window's
//! end. The next block is claimed in the background before the current one
//! is empty, unless the block covers the node until then, or Redis could
//! grant it no more than one request's worth: DESIGN section 6 caps a claim
//! at `need + ceil((limit - granted - need) / (2 * nodes))`, so near a
//! window's end the claim a request makes for itself (need one) gets as much
//! as a refill (need nothing) or more, for one round trip all the same.

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
    /// Admissions spent from it (for sizing).
    pub(crate) admitted: u64,
}

/// Per-key lease state.
#[derive(Debug, Default)]
pub(crate) struct LeaseState {
    pub(crate) lease: Option<Lease>,
    /// A claim of this key is waiting for Redis's answer (one at a time).
    pub(crate) claim_in_flight: bool,
    /// What this node admitted in the window of `rate_window`, and a
    /// smoothed count of its recent busy windows, for block sizing.
    rate_window: u64,
    admitted_in_window: u64,
    recent_rate: u64,
}

/// The most a claim that needs nothing can be granted in a dimension whose
/// window has `used` of `cap`, with `nodes` live nodes (the claim script's
/// cap).
pub(crate) fn claimable(cap: u64, used: u64, nodes: u64) -> u64 {
    cap.saturating_sub(used).div_ceil(2 * nodes.max(1))
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

    /// Add `grant`, made for `window` (ending at `window_end_ms`), to the
    /// lease of that window, or start a new lease with it (a grant for a
    /// later window voids what is left of the current one).
    pub(crate) fn merge(
        &mut self,
        limit: &EnvironmentLimit,
        window: u64,
        window_end_ms: u64,
        grant: [u64; 4],
    ) {
        match &mut self.lease {
            Some(lease)
                if lease.window == window
                    && lease.unit == limit.unit
                    && lease.caps == limit.caps =>
            {
                for (i, amount) in grant.into_iter().enumerate() {
                    lease.left[i] += amount;
                    lease.granted[i] += amount;
                }
            }
            _ => {
                self.lease = Some(Lease {
                    unit: limit.unit,
                    caps: limit.caps,
                    window,
                    spend_until_ms: window_end_ms.saturating_sub(GUARD_MS),
                    window_end_ms,
                    left: grant,
                    granted: grant,
                    admitted: 0,
                });
            }
        }
    }

    /// Count one admission in `window` for block sizing.
    pub(crate) fn note_admitted(&mut self, window: u64) {
        if window > self.rate_window {
            self.recent_rate = self.recent_rate_at(window);
            self.rate_window = window;
            self.admitted_in_window = 0;
        }
        self.admitted_in_window += 1;
    }

    /// The smoothed rate of the windows before `window`: the last counted
    /// window's count when it was the busiest, halfway down to it when it
    /// was quieter, and halved for every window with no admission since.
    fn recent_rate_at(&self, window: u64) -> u64 {
        if window <= self.rate_window {
            return self.recent_rate;
        }
        let last = self.admitted_in_window;
        let smoothed = self.recent_rate.max(last) / 2 + last / 2;
        let idle = window - self.rate_window - 1;
        smoothed >> idle.min(63)
    }

    /// What this node admits per window of `unit`: its recent windows' rate,
    /// or the current window's pace when that is faster. The pace counts
    /// the window's admissions over at least a quarter of it, so that a few
    /// requests at a window's start do not look like a high rate, while a
    /// node that starts taking load doubles its blocks claim after claim.
    pub(crate) fn rate(&self, unit: TimeUnit, now: u64) -> u64 {
        let window_ms = unit.millis();
        let window = unit.window_index(now);
        let current = if window == self.rate_window {
            self.admitted_in_window
        } else {
            0
        };
        let elapsed = (now - window * window_ms).max(window_ms / 4).max(1);
        let pace = u128::from(current) * u128::from(window_ms) / u128::from(elapsed);
        self.recent_rate_at(window)
            .max(u64::try_from(pace).unwrap_or(u64::MAX))
    }

    /// The block size to ask for, in requests; token dimensions scale it by
    /// the per-request cost.
    pub(crate) fn block(&self, unit: TimeUnit, now: u64) -> u64 {
        (self.rate(unit, now) / 4).max(1)
    }

    /// How many requests this node expects to admit from `now` until
    /// `until`, at its rate.
    pub(crate) fn expected(&self, unit: TimeUnit, now: u64, until: u64) -> u64 {
        let rate = u128::from(self.rate(unit, now));
        let span = u128::from(until.saturating_sub(now));
        let window_ms = u128::from(unit.millis());
        u64::try_from((rate * span).div_ceil(window_ms)).unwrap_or(u64::MAX)
    }

    /// How many requests' worth a claim made for a request that found no
    /// usable block asks for besides what the request needs: a block, but
    /// no more than the node expects to admit before it would stop spending
    /// it, and nothing inside the guard margin (where it could not be
    /// spent).
    pub(crate) fn claim_extra(&self, unit: TimeUnit, now: u64) -> u64 {
        let window_end = unit.window_end(unit.window_index(now));
        let spend_until = window_end.saturating_sub(GUARD_MS);
        if now >= spend_until {
            return 0;
        }
        self.block(unit, now)
            .min(self.expected(unit, now, spend_until))
    }

    /// The background claim to start after an admission from the usable
    /// lease, per dimension, if one is due: the block runs low, the node
    /// expects to admit more than it holds before it stops spending it, and
    /// Redis, whose window had `seen_used` at its last answer (others may
    /// have claimed since, never given back), could grant a claim that needs
    /// nothing more than one request's worth.
    pub(crate) fn refill(
        &self,
        limit: &EnvironmentLimit,
        now: u64,
        seen_used: &[u64; 4],
        nodes: u64,
    ) -> Option<[u64; 4]> {
        let lease = self.lease.as_ref()?;
        let block = self.block(limit.unit, now);
        let expected = self.expected(limit.unit, now, lease.spend_until_ms);
        let missing = expected.saturating_sub(lease.requests_left());
        if !lease.low(block) || missing == 0 {
            return None;
        }
        let extra = lease.scaled(block.min(missing));
        let worth_it = (0..4).all(|i| match limit.caps[i] {
            Some(cap) if extra[i] > 0 => claimable(cap, seen_used[i], nodes) > lease.unit_cost(i),
            _ => true,
        });
        worth_it.then_some(extra)
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
        self.admitted += 1;
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

    /// How many requests the block still holds, at the per-request cost of
    /// what was granted.
    fn requests_left(&self) -> u64 {
        (0..4)
            .filter(|i| self.caps[*i].is_some())
            .map(|i| self.left[i] / self.unit_cost(i))
            .min()
            .unwrap_or(u64::MAX)
    }

    /// `requests` requests' worth, per limited dimension.
    fn scaled(&self, requests: u64) -> [u64; 4] {
        std::array::from_fn(|i| match self.caps[i] {
            Some(_) => requests.saturating_mul(self.unit_cost(i)),
            None => 0,
        })
    }

    /// What one request takes of dimension `i`, on average: of what was
    /// spent once something was, of what was granted per request before.
    fn unit_cost(&self, i: usize) -> u64 {
        let per_request = match (i, self.admitted) {
            (0, _) => 1,
            (_, 0) => self.granted[i] / self.granted[0].max(1),
            (_, admitted) => (self.granted[i] - self.left[i]) / admitted,
        };
        per_request.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Clock, FakeClock};

    /// Window 1 of a SECOND limit: Redis time 1 000 to 2 000 ms.
    fn lease(left: u64) -> Lease {
        Lease {
            unit: TimeUnit::Second,
            caps: [Some(100), None, None, None],
            window: 1,
            spend_until_ms: 1_995,
            window_end_ms: 2_000,
            left: [left, 0, 0, 0],
            granted: [left, 0, 0, 0],
            admitted: 0,
        }
    }

    fn limit_of(requests: u64) -> EnvironmentLimit {
        let mut limit = EnvironmentLimit::default();
        limit.caps[0] = Some(requests);
        limit
    }

    /// A node that admitted `per_window` in window 0, holding `lease`.
    fn busy_node(per_window: u64, lease: Lease) -> LeaseState {
        let mut state = LeaseState {
            lease: Some(lease),
            ..Default::default()
        };
        for _ in 0..per_window {
            state.note_admitted(0);
        }
        state
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
        let mut limit = limit_of(100);
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
    fn a_grant_adds_to_its_windows_block_and_a_later_windows_grant_replaces_it() {
        let limit = limit_of(100);
        let mut state = LeaseState {
            lease: Some(lease(5)),
            ..Default::default()
        };
        state.merge(&limit, 1, 2_000, [10, 0, 0, 0]);
        assert_eq!(state.lease.unwrap().left, [15, 0, 0, 0]);
        state.merge(&limit, 2, 3_000, [4, 0, 0, 0]);
        let next = state.lease.unwrap();
        assert_eq!((next.window, next.left), (2, [4, 0, 0, 0]));
        assert_eq!(next.spend_until_ms, 3_000 - GUARD_MS);
    }

    #[test]
    fn block_size_follows_the_nodes_own_rate() {
        let mut state = LeaseState::default();
        for _ in 0..240 {
            state.note_admitted(7);
        }
        assert_eq!(
            state.block(TimeUnit::Second, 8_000),
            60,
            "next window's start"
        );
        assert_eq!(
            state.block(TimeUnit::Second, 10_000),
            15,
            "halved for each of two idle windows"
        );
        state.note_admitted(8);
        assert_eq!(state.block(TimeUnit::Second, 8_100), 60);
    }

    #[test]
    fn a_node_that_starts_taking_load_doubles_its_blocks_and_a_few_requests_claim_little() {
        let clock = FakeClock::at(5_000);
        let mut state = LeaseState::default();
        assert_eq!(state.block(TimeUnit::Second, clock.now_ms()), 1);
        for _ in 0..3 {
            state.note_admitted(5);
        }
        clock.advance(10);
        // Three requests in 10 ms count as three in a quarter of the window.
        assert_eq!(state.rate(TimeUnit::Second, clock.now_ms()), 12);
        assert_eq!(state.block(TimeUnit::Second, clock.now_ms()), 3);
        for _ in 0..37 {
            state.note_admitted(5);
        }
        clock.advance(90);
        assert_eq!(state.block(TimeUnit::Second, clock.now_ms()), 40);
        clock.advance(400);
        assert_eq!(
            state.block(TimeUnit::Second, clock.now_ms()),
            20,
            "40 in the first half: 80 per window"
        );
    }

    #[test]
    fn a_claim_asks_for_no_more_than_the_node_expects_to_spend_before_the_guard_margin() {
        let clock = FakeClock::at(1_000);
        let state = busy_node(400, lease(0));
        assert_eq!(state.claim_extra(TimeUnit::Second, clock.now_ms()), 100);
        clock.set(1_945);
        // 400 per second: 20 in the 50 ms before the guard margin.
        assert_eq!(state.claim_extra(TimeUnit::Second, clock.now_ms()), 20);
        clock.set(1_996);
        assert_eq!(state.claim_extra(TimeUnit::Second, clock.now_ms()), 0);
    }

    #[test]
    fn a_refill_starts_when_the_block_runs_low_before_the_node_is_done_with_it() {
        let limit = limit_of(300);
        let clock = FakeClock::at(1_500);
        // 240 per second: a block of 60, low under 30.
        let state = busy_node(240, lease(40));
        assert_eq!(
            state.refill(&limit, clock.now_ms(), &[100, 0, 0, 0], 3),
            None
        );
        let state = busy_node(240, lease(20));
        assert_eq!(
            state.refill(&limit, clock.now_ms(), &[100, 0, 0, 0], 3),
            Some([60, 0, 0, 0])
        );
        clock.set(1_950);
        // 20 left covers the 11 it expects in the last 45 ms.
        assert_eq!(
            state.refill(&limit, clock.now_ms(), &[100, 0, 0, 0], 3),
            None
        );
        clock.set(1_800);
        assert_eq!(
            state.refill(&limit, clock.now_ms(), &[100, 0, 0, 0], 3),
            Some([27, 0, 0, 0]),
            "only what it expects to miss"
        );
    }

    #[test]
    fn a_token_refill_asks_for_what_the_requests_spent_on_average() {
        let mut limit = EnvironmentLimit::default();
        limit.caps[Dimension::TotalTokens.index()] = Some(1_000_000);
        // Requests unlimited: a first claim of 4 000 tokens, then 3 requests
        // of 700 tokens each.
        let mut lease = Lease {
            caps: limit.caps,
            left: [0, 0, 0, 4_000],
            granted: [0, 0, 0, 4_000],
            ..lease(0)
        };
        for _ in 0..3 {
            assert!(lease.try_spend(Cost([1, 0, 0, 700]), &[0; 4]));
        }
        let state = busy_node(40, lease);
        // 40 requests per second: a block of 10 requests, 7 000 tokens.
        assert_eq!(
            state.refill(&limit, 1_500, &[0; 4], 3),
            Some([0, 0, 0, 7_000])
        );
    }

    #[test]
    fn no_refill_is_claimed_when_redis_could_grant_one_request_at_most() {
        let limit = limit_of(300);
        let state = busy_node(240, lease(2));
        // 295 of 300 used, three nodes: ceil(5 / 6) = 1, which the next
        // request's own claim gets too (1 + ceil(4 / 6)).
        assert_eq!(claimable(300, 295, 3), 1);
        assert_eq!(state.refill(&limit, 1_500, &[295, 0, 0, 0], 3), None);
        assert_eq!(claimable(300, 294, 3), 1);
        assert_eq!(claimable(300, 293, 3), 2);
        assert!(state.refill(&limit, 1_500, &[293, 0, 0, 0], 3).is_some());
    }
}
