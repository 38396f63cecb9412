//! The node-local registry of counter cells and in-flight gauges, one per
//! (API, environment).
//!
//! Cells outlive definition changes (a new limit applies to the current
//! window with the count it already has); cells of deleted APIs are dropped
//! by [`LocalCounters::retain`].

use crate::{CounterCell, InFlight};
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
