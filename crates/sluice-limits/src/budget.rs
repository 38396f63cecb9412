//! One (API, environment)'s budget as the gateway uses it, wherever it is
//! counted: on this node ([`CounterCell`]) or shared by a cluster through
//! Redis ([`SharedBudget`]).
//!
//! An enum rather than a trait object: the local path stays a direct call
//! (its `admit` future is ready at once), and no future is boxed.

use crate::redis::SharedBudget;
use crate::{Admission, Cost, CounterCell, Decision, WindowUsage};
use sluice_core::{EnvironmentLimit, TimeUnit};
use std::sync::Arc;

/// Where one budget is counted.
#[derive(Debug, Clone)]
pub enum Budget {
    /// On this node only.
    Local(Arc<CounterCell>),
    /// In Redis, for the whole cluster.
    Shared(Arc<SharedBudget>),
}

impl Budget {
    /// Decide for all dimensions at once; see [`CounterCell::admit`].
    pub async fn admit(&self, limit: &EnvironmentLimit, cost: Cost, now_ms: u64) -> Decision {
        match self {
            Budget::Local(cell) => cell.admit(limit, cost, now_ms),
            Budget::Shared(shared) => shared.admit(limit, cost).await,
        }
    }

    /// Give an admission back (no byte reached the backend).
    pub fn refund(&self, admission: &Admission) {
        match self {
            Budget::Local(cell) => cell.refund(admission),
            Budget::Shared(shared) => shared.settle(admission, Cost::default()),
        }
    }

    /// Settle an admission with what it really cost; see [`CounterCell::settle`].
    pub fn settle(&self, admission: &Admission, actual: Cost, unit: TimeUnit, now_ms: u64) {
        match self {
            Budget::Local(cell) => cell.settle(admission, actual, unit, now_ms),
            Budget::Shared(shared) => shared.settle(admission, actual),
        }
    }

    /// The current window's counts (cluster totals when shared).
    pub fn usage(&self, unit: TimeUnit, now_ms: u64) -> WindowUsage {
        match self {
            Budget::Local(cell) => cell.usage(unit, now_ms),
            Budget::Shared(shared) => shared.usage(unit),
        }
    }

    /// True when the counts are the cluster's, not this node's.
    pub fn is_shared(&self) -> bool {
        matches!(self, Budget::Shared(_))
    }
}
