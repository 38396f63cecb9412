//! The warning of a node whose cap does not hold for the cluster: it shares
//! definitions with other nodes (PostgreSQL) but counts on its own
//! (`[counters] backend = "local"`), so every node admits up to the whole
//! limit and the backend sees up to the limit times the number of nodes
//! (DESIGN section 9). Said three ways, for three audiences: the log at start,
//! `/readyz` detail, and a gauge alerting can watch.

/// The gauge: 1 while the cap is multiplied, 0 otherwise.
pub(crate) const LOCAL_COUNTERS_WITH_SHARED_DEFINITIONS: &str =
    "sluice_cluster_local_counters_with_shared_definitions";

/// What the log and `/readyz` say.
pub(crate) const MULTIPLIED_CAP: &str = "definitions are shared with other nodes but counters are local ([counters] backend = \"local\"): each node admits up to the whole limit, so the cap is multiplied by the number of nodes; count in Redis ([counters] backend = \"redis\") for one cap per cluster";

/// Publish the gauge and, when the cap is multiplied, log the warning and
/// return it for `/readyz`. Needs the metrics recorder installed.
pub(crate) fn announce(shares_definitions: bool, counts_locally: bool) -> Option<&'static str> {
    let multiplied = shares_definitions && counts_locally;
    metrics::describe_gauge!(
        LOCAL_COUNTERS_WITH_SHARED_DEFINITIONS,
        "1 when this node shares definitions with other nodes but counts locally: the cap is multiplied by the number of nodes"
    );
    metrics::gauge!(LOCAL_COUNTERS_WITH_SHARED_DEFINITIONS).set(if multiplied { 1.0 } else { 0.0 });
    if multiplied {
        tracing::warn!("{MULTIPLIED_CAP}");
        Some(MULTIPLIED_CAP)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_shared_definitions_with_local_counters_multiply_the_cap() {
        assert_eq!(announce(true, true), Some(MULTIPLIED_CAP));
        assert_eq!(announce(true, false), None);
        assert_eq!(announce(false, true), None);
        assert_eq!(announce(false, false), None);
    }
}
