//! The node-local registry of counter cells and in-flight gauges, one per
//! (API, environment).
//!
//! Cells outlive definition changes (a new limit applies to the current
//! window with the count it already has); cells of deleted APIs are dropped
//! by [`LocalCounters::retain`].

use crate::redis::RedisCounters;
use crate::{Budget, CounterCell, InFlight};
use parking_lot::Mutex;
use sluice_core::Environment;
use std::collections::HashMap;
use std::sync::Arc;

/// Identifies a budget: an API and one of its environments.
pub type CounterKey = (String, Environment);

/// The state of one budget on this node: its counter cell and in-flight gauge.
pub type BudgetState = (Arc<CounterCell>, Arc<InFlight>);

/// Counter cells of this node.
#[derive(Debug, Default)]
pub struct LocalCounters {
    cells: Mutex<HashMap<CounterKey, BudgetState>>,
}

impl LocalCounters {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The cell and in-flight gauge of `(api_id, environment)`, created empty
    /// on first use.
    pub fn get(&self, api_id: &str, environment: Environment) -> BudgetState {
        let mut cells = self.cells.lock();
        cells
            .entry((api_id.to_owned(), environment))
            .or_default()
            .clone()
    }

    /// Drop the cells whose API is no longer published.
    pub fn retain(&self, mut live: impl FnMut(&str) -> bool) {
        self.cells.lock().retain(|(api_id, _), _| live(api_id));
    }

    /// Number of cells held.
    pub fn len(&self) -> usize {
        self.cells.lock().len()
    }

    /// True when no cell is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where this node's budgets are counted.
#[derive(Debug)]
pub enum Counters {
    /// On this node only.
    Local(LocalCounters),
    /// In Redis, shared by the cluster.
    Redis(RedisCounters),
}

impl Counters {
    /// The budget and in-flight gauge of `(api_id, environment)`.
    pub fn get(&self, api_id: &str, environment: Environment) -> (Budget, Arc<InFlight>) {
        match self {
            Counters::Local(local) => {
                let (cell, in_flight) = local.get(api_id, environment);
                (Budget::Local(cell), in_flight)
            }
            Counters::Redis(redis) => {
                let (shared, in_flight) = redis.get(api_id, environment);
                (Budget::Shared(shared), in_flight)
            }
        }
    }

    /// Drop the budgets whose API is no longer published.
    pub fn retain(&self, live: impl FnMut(&str) -> bool) {
        match self {
            Counters::Local(local) => local.retain(live),
            Counters::Redis(redis) => redis.retain(live),
        }
    }

    /// A short name for health output: `local` or `redis`.
    pub fn kind(&self) -> &'static str {
        match self {
            Counters::Local(_) => "local",
            Counters::Redis(_) => "redis",
        }
    }

    /// True while shared counters are unreachable (the failure policy applies).
    pub fn degraded(&self) -> bool {
        match self {
            Counters::Local(_) => false,
            Counters::Redis(redis) => redis.degraded(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_gives_the_same_cell() {
        let counters = LocalCounters::new();
        let (a, _) = counters.get("api", Environment::Production);
        let (b, _) = counters.get("api", Environment::Production);
        let (c, _) = counters.get("api", Environment::Sandbox);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
    }

    #[test]
    fn retain_drops_deleted_apis() {
        let counters = LocalCounters::new();
        counters.get("keep", Environment::Production);
        counters.get("gone", Environment::Sandbox);
        counters.retain(|api| api == "keep");
        assert_eq!(counters.len(), 1);
    }
}
