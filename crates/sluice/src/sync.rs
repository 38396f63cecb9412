//! Definition sync: how a change saved through any node becomes live on every
//! node (DESIGN section 6, "Definitions").
//!
//! A thread of its own, off the async workers (the store blocks), polls the
//! store's revision every [`POLL_INTERVAL`] and reloads when it differs from
//! the revision served, so a change or a key revocation is live on every node
//! within about a second (the interval plus one reload). When the store
//! cannot be reached the node keeps serving what it has, and [`StoreHealth`]
//! says so; once the store answers again the node reloads everything, changed
//! revision or not (a full resync after every reconnect). Polling stays the
//! mechanism: a missed notification can never leave a node behind.
//!
//! The thread stops when [`DefinitionSync::stop`] is called or the handle is
//! dropped.

use crate::reload::StoreReloader;
use anyhow::{Context, bail};
use sluice_store::StoreError;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How often a node asks the store for its revision.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// What `/readyz` says about a store no poll has reached.
pub(crate) const DEGRADED: &str = "degraded: definition store unavailable, serving last snapshot";

/// Whether the definition store answered the last time it was asked.
#[derive(Debug)]
pub(crate) struct StoreHealth {
    reachable: AtomicBool,
}

impl StoreHealth {
    /// Health as of the first load.
    pub(crate) fn new(reachable: bool) -> Self {
        Self {
            reachable: AtomicBool::new(reachable),
        }
    }

    /// True while the store answers.
    pub(crate) fn reachable(&self) -> bool {
        self.reachable.load(Ordering::Relaxed)
    }

    /// Record a poll's outcome; returns the previous state.
    fn record(&self, reachable: bool) -> bool {
        self.reachable.swap(reachable, Ordering::Relaxed)
    }
}

/// Serve the first definitions: from the store, or, when a shared store
/// cannot be reached, from the node's local snapshot (the node then starts
/// degraded and the sync catches up once the store is back). Fails when
/// neither is there: a node with nothing to serve must not pretend to run.
pub(crate) async fn first_load(
    reloader: &Arc<StoreReloader>,
    shared: bool,
) -> anyhow::Result<Arc<StoreHealth>> {
    let from_store = {
        let reloader = Arc::clone(reloader);
        tokio::task::spawn_blocking(move || reloader.reload_now())
            .await
            .context("the definitions load task failed")?
    };
    let reason = match from_store {
        Ok(()) => return Ok(Arc::new(StoreHealth::new(true))),
        Err(StoreError::Unavailable(reason)) if shared => reason,
        Err(error) => return Err(error).context("cannot load the definitions"),
    };
    let from_snapshot = {
        let reloader = Arc::clone(reloader);
        tokio::task::spawn_blocking(move || reloader.serve_snapshot())
            .await
            .context("the snapshot load task failed")?
            .context("definition store unavailable, and its local snapshot cannot be read")?
    };
    let Some(revision) = from_snapshot else {
        bail!(
            "definition store unavailable ({reason}), and this node has no local snapshot to start from"
        );
    };
    tracing::warn!(
        %reason,
        snapshot_revision = revision,
        "definition store unavailable at start: serving the local snapshot; admin writes fail until it is back"
    );
    Ok(Arc::new(StoreHealth::new(false)))
}

/// The running poller.
pub(crate) struct DefinitionSync {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl DefinitionSync {
    /// Start polling every `interval`.
    pub(crate) fn start(
        reloader: Arc<StoreReloader>,
        health: Arc<StoreHealth>,
        interval: Duration,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("definition-sync".into())
            .spawn(move || {
                let mut poller = Poller {
                    reloader,
                    health,
                    last_failure: None,
                };
                // A message or a dropped sender both mean stop.
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    poller.poll();
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Stop polling and wait for the poll in progress, if any, to end.
    pub(crate) async fn stop(mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

impl Drop for DefinitionSync {
    fn drop(&mut self) {
        // Dropping the sender wakes the thread, which then ends on its own.
        self.stop.take();
    }
}

/// One node's poll loop state.
struct Poller {
    reloader: Arc<StoreReloader>,
    health: Arc<StoreHealth>,
    /// The last failure logged, so a lasting outage is logged once.
    last_failure: Option<String>,
}

impl Poller {
    fn poll(&mut self) {
        let revision = match self.reloader.store().revision() {
            Ok(revision) => revision,
            Err(error) => {
                if self.health.record(false) {
                    tracing::warn!(%error, "definition store unavailable: serving the last definitions until it is back");
                }
                return;
            }
        };
        let was_reachable = self.health.record(true);
        if !was_reachable {
            tracing::info!(
                revision,
                "definition store reachable again: reloading all definitions"
            );
        }
        if was_reachable && self.reloader.served_revision() == Some(revision) {
            return;
        }
        match self.reloader.reload_now() {
            Ok(()) => {
                self.last_failure = None;
                tracing::debug!(revision, "definitions reloaded");
            }
            Err(error) => {
                let message = error.to_string();
                if self.last_failure.as_ref() != Some(&message) {
                    tracing::error!(%error, "cannot reload the definitions; serving the previous ones");
                }
                self.last_failure = Some(message);
                if matches!(error, sluice_store::StoreError::Unavailable(_)) {
                    self.health.record(false);
                }
            }
        }
    }
}
