//! What an admission costs and what the limiter answers.

use sluice_core::{Dimension, TimeUnit};

/// Units a request takes from each dimension, indexed by [`Dimension::index`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cost(pub [u64; 4]);

impl Cost {
    /// One request and no tokens.
    pub const ONE_REQUEST: Cost = Cost([1, 0, 0, 0]);

    /// The amount of one dimension.
    pub fn get(&self, dimension: Dimension) -> u64 {
        self.0[dimension.index()]
    }
}

/// The answer to an admission request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Forward the request; keep the admission to refund or settle it.
    Admitted(Admission),
    /// Do not forward it.
    Refused(Refusal),
    /// The shared counters could not decide: Redis is unreachable and the
    /// policy is `fail-closed`, or one call missed its deadline.
    Unavailable {
        /// A hint of when to try again, in milliseconds.
        retry_after_ms: u64,
        /// True for a single missed deadline (trying again soon may work);
        /// false while the store is known to be down.
        retryable: bool,
    },
}

/// A granted admission: which window it was counted in, and for how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Admission {
    /// The unit the window belongs to.
    pub unit: TimeUnit,
    /// Index of the window the cost was counted in.
    pub window_index: u64,
    /// What was counted.
    pub cost: Cost,
}

/// A refusal: the dimension that had no room, and when the window ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// The first dimension (in [`Dimension::ALL`] order) without room.
    pub dimension: Dimension,
    /// The limit of that dimension.
    pub limit: u64,
    /// Milliseconds until the current window ends (at least 1).
    pub retry_after_ms: u64,
    /// Epoch milliseconds at which the current window ends.
    pub window_end_ms: u64,
}
