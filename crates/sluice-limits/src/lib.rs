//! Window maths, counters and admission decisions for Maximum Backend
//! Throughput.
//!
//! A [`CounterCell`] holds the current fixed window of one (API, environment)
//! for every dimension; [`CounterCell::admit`] decides for all dimensions at
//! once, all or nothing. Time comes from an injected [`Clock`], so every test
//! runs on a [`FakeClock`] without sleeping. [`LocalCounters`] is the per-node
//! registry of cells: the gateway resolves a cell once per routing snapshot,
//! never per request.

#![forbid(unsafe_code)]

mod budget;
mod cell;
mod clock;
mod decision;
mod in_flight;
pub mod redis;
mod registry;

pub use budget::Budget;
pub use cell::{CounterCell, WindowUsage};
pub use clock::{Clock, FakeClock, SystemClock};
pub use decision::{Admission, Cost, Decision, Refusal};
pub use in_flight::{InFlight, InFlightPermit};
pub use registry::{BudgetState, CounterKey, Counters, LocalCounters};
