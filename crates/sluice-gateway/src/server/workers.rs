//! The gateway's worker threads. Each runs a single-threaded runtime and
//! serves the client connections handed to it, with the upstream pools of
//! its own thread, so that one request's work never hops between threads.
//!
//! The accept loop hands each new connection to the worker with the fewest
//! open connections (a shared listener would let whichever thread wakes
//! first take a whole burst of connections, leaving the other cores idle).

use super::Server;
use super::connection::Registered;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// A connection on its way to a worker.
struct Handover {
    stream: std::net::TcpStream,
    remote: SocketAddr,
    registered: Registered,
    load: Load,
}

/// Counts a connection on its worker until the connection ends.
pub(super) struct Load {
    open: Arc<[AtomicUsize]>,
    worker: usize,
}

impl Drop for Load {
    fn drop(&mut self) {
        self.open[self.worker].fetch_sub(1, Ordering::Relaxed);
    }
}

/// The running workers and the way to each.
pub(super) struct Workers {
    inboxes: Vec<mpsc::UnboundedSender<Handover>>,
    open: Arc<[AtomicUsize]>,
    threads: Running,
}

/// The worker threads, once no connection is handed to them any more.
pub(super) struct Running(Vec<JoinHandle<()>>);

impl Workers {
    /// Start `server`'s gateway's configured number of workers (at least one).
    pub(super) fn start(server: &Arc<Server>) -> io::Result<Self> {
        let count = server.gateway.settings().workers.max(1);
        let open: Arc<[AtomicUsize]> = (0..count).map(|_| AtomicUsize::new(0)).collect();
        let mut inboxes = Vec::with_capacity(count);
        let mut threads = Vec::with_capacity(count);
        for worker in 0..count {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (inbox, handed) = mpsc::unbounded_channel();
            let server = Arc::clone(server);
            let thread = std::thread::Builder::new()
                .name(format!("gateway-{worker}"))
                .spawn(move || {
                    crate::upstream::enter_worker(worker);
                    runtime.block_on(run_worker(server, handed));
                })?;
            inboxes.push(inbox);
            threads.push(thread);
        }
        Ok(Self {
            inboxes,
            open,
            threads: Running(threads),
        })
    }

    /// Give an accepted connection to the worker with the fewest open.
    pub(super) fn hand_over(&self, stream: TcpStream, remote: SocketAddr, registered: Registered) {
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "cannot hand a connection to a worker");
                return;
            }
        };
        let worker = (0..self.open.len())
            .min_by_key(|worker| self.open[*worker].load(Ordering::Relaxed))
            .unwrap_or(0);
        self.open[worker].fetch_add(1, Ordering::Relaxed);
        let load = Load {
            open: Arc::clone(&self.open),
            worker,
        };
        let handover = Handover {
            stream,
            remote,
            registered,
            load,
        };
        if self.inboxes[worker].send(handover).is_err() {
            tracing::warn!(worker, "a gateway worker has stopped; connection dropped");
        }
    }

    /// Hand over no more connections; the workers serve what they have until
    /// the drain ends.
    pub(super) fn stop_handing_over(self) -> Running {
        self.threads
    }
}

impl Running {
    /// Wait for every worker thread to end.
    pub(super) async fn join(self) -> io::Result<()> {
        let threads = self.0;
        let panicked = tokio::task::spawn_blocking(move || {
            threads
                .into_iter()
                .map(JoinHandle::join)
                .filter(Result::is_err)
                .count()
        })
        .await
        .map_err(io::Error::other)?;
        match panicked {
            0 => Ok(()),
            n => Err(io::Error::other(format!("{n} gateway worker(s) panicked"))),
        }
    }
}

/// A worker's life: serve every connection handed to it; once the accept
/// loop stops handing over, serve those still open until they close or the
/// drain gives up on them.
async fn run_worker(server: Arc<Server>, mut handed: mpsc::UnboundedReceiver<Handover>) {
    while let Some(handover) = handed.recv().await {
        let stream = match TcpStream::from_std(handover.stream) {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "a gateway worker cannot take a connection");
                continue;
            }
        };
        server.spawn_connection(stream, handover.remote, handover.registered, handover.load);
    }
    server.drained().await;
}
