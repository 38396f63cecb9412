//! The `local-share` fallback (DESIGN section 6): what one node may admit on
//! its own while Redis is out of reach.
//!
//! For the rest of the window in which Redis was lost, the node takes its
//! share of what the cluster had left: `max(0, floor((limit - last_total) /
//! N))`. From the next window on, `floor(limit / N)`, plus one for the first
//! `limit mod N` nodes in node-id order, so the shares add up to the limit.
//! `N` is the live-node count seen through heartbeats, at least `min_nodes`.

/// This node's view of the cluster: how many nodes, and its rank among them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeView {
    /// Live nodes, already raised to `min_nodes`.
    pub nodes: u64,
    /// This node's position in node-id order (0-based), when it has seen
    /// itself in a heartbeat answer.
    pub rank: Option<u64>,
}

/// The share of a window the cluster has not started counting in Redis.
pub fn fresh_window_share(limit: u64, view: NodeView) -> u64 {
    let nodes = view.nodes.max(1);
    let extra = view.rank.is_some_and(|rank| rank < limit % nodes);
    limit / nodes + u64::from(extra)
}

/// The share of the window in which Redis was lost, given what the cluster
/// had used by then.
pub fn current_window_share(limit: u64, last_total: u64, view: NodeView) -> u64 {
    limit.saturating_sub(last_total) / view.nodes.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_of_a_fresh_window_add_up_to_the_limit() {
        let limit = 10;
        let total: u64 = (0..3)
            .map(|rank| {
                fresh_window_share(
                    limit,
                    NodeView {
                        nodes: 3,
                        rank: Some(rank),
                    },
                )
            })
            .sum();
        assert_eq!(total, limit);
        assert_eq!(
            fresh_window_share(
                10,
                NodeView {
                    nodes: 3,
                    rank: Some(0)
                }
            ),
            4
        );
        assert_eq!(
            fresh_window_share(
                10,
                NodeView {
                    nodes: 3,
                    rank: Some(2)
                }
            ),
            3
        );
    }

    #[test]
    fn a_node_that_never_saw_itself_takes_the_floor() {
        assert_eq!(
            fresh_window_share(
                10,
                NodeView {
                    nodes: 3,
                    rank: None
                }
            ),
            3
        );
    }

    #[test]
    fn the_current_window_shares_what_was_left() {
        assert_eq!(
            current_window_share(
                300,
                240,
                NodeView {
                    nodes: 2,
                    rank: Some(0)
                }
            ),
            30
        );
        assert_eq!(
            current_window_share(
                300,
                400,
                NodeView {
                    nodes: 2,
                    rank: None
                }
            ),
            0
        );
    }
}
