//! The connection to Redis (one server, or a Redis Cluster) and the typed
//! calls of the scripts.
//!
//! `rediss://` URLs connect over TLS (rustls), verifying the server against
//! the configured CAs or the system roots, with a client certificate when
//! one is configured.
//!
//! Connecting happens off the request path: a request that finds no
//! connection fails at once (and the failure policy answers it) while a
//! background attempt connects. `EVALSHA` falls back to `EVAL` by itself
//! when a failover lost the script cache (`NOSCRIPT`).

use super::RedisSettings;
use super::scripts::{ADMIT, CLAIM, HEARTBEAT, RECOVER, SETTLE};
use crate::{Admission, Cost};
use parking_lot::Mutex;
use redis::aio::ConnectionManager;
use redis::cluster_async::ClusterConnection;
use redis::{RedisError, RedisResult, Script};
use sluice_core::{Dimension, TimeUnit};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

enum Target {
    Single(redis::Client),
    Cluster(redis::cluster::ClusterClient),
}

/// A lazily made, shared connection.
pub(crate) struct Connection {
    target: Target,
    conn: Mutex<Option<Conn>>,
    connecting: Arc<AtomicBool>,
}

/// The answer of the admission script.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AdmitReply {
    pub(crate) refused: Option<Dimension>,
    pub(crate) window: u64,
    pub(crate) window_end_ms: u64,
    pub(crate) now_ms: u64,
    pub(crate) used: [u64; 4],
}

/// The answer of the claim script.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClaimReply {
    pub(crate) refused: Option<Dimension>,
    pub(crate) window: u64,
    pub(crate) window_end_ms: u64,
    pub(crate) now_ms: u64,
    pub(crate) grant: [u64; 4],
    pub(crate) used: [u64; 4],
}

/// The answer of the heartbeat script.
#[derive(Debug, Clone)]
pub(crate) struct HeartbeatReply {
    /// Redis now.
    pub(crate) now_ms: u64,
    /// This node's heartbeat was in Redis before this one.
    pub(crate) present: bool,
    /// The live node ids, in order.
    pub(crate) ids: Vec<String>,
}

/// The first five fields every counting script answers with: decided,
/// window, window end, Redis now, refused dimension.
struct ReplyHead {
    refused: Option<Dimension>,
    window: u64,
    window_end_ms: u64,
    now_ms: u64,
}

impl ReplyHead {
    fn parse(reply: &[i64], len: usize, short: &'static str) -> RedisResult<Self> {
        if reply.len() < len {
            return Err(RedisError::from((redis::ErrorKind::TypeError, short)));
        }
        Ok(Self {
            refused: (reply[0] == 0)
                .then(|| Dimension::ALL.get(reply[4].max(0) as usize).copied())
                .flatten(),
            window: non_negative(reply[1]),
            window_end_ms: non_negative(reply[2]),
            now_ms: non_negative(reply[3]),
        })
    }
}

fn non_negative(value: i64) -> u64 {
    value.max(0) as u64
}

/// The Redis client builds its TLS configuration with the process's default
/// rustls provider, and without one it panics in the task that connects.
/// Sluice's TLS is ring everywhere: install it unless the process chose.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // An error means another thread installed one first: fine too.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Marks a connection attempt as over however it ends: the heartbeat's
/// deadline drops an attempt half-way when Redis accepts but does not answer
/// (or a TLS handshake stalls), and the next heartbeat must try again.
struct ConnectAttempt<'a>(&'a AtomicBool);

impl Drop for ConnectAttempt<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

fn not_connected() -> RedisError {
    RedisError::from((redis::ErrorKind::IoError, "not connected to Redis yet"))
}

impl Connection {
    pub(crate) fn new(settings: &RedisSettings) -> Result<Self, String> {
        let tls_urls = settings.urls.iter().any(|url| url.starts_with("rediss://"));
        if settings.tls.is_some() && !tls_urls {
            return Err("ca_file, client_cert: only with rediss:// URLs".to_owned());
        }
        if tls_urls {
            install_crypto_provider();
        }
        let target = if settings.cluster {
            let mut builder = redis::cluster::ClusterClient::builder(settings.urls.clone())
                .connection_timeout(Duration::from_secs(1))
                .response_timeout(Duration::from_secs(1));
            if let Some(tls) = &settings.tls {
                builder = builder.certs(tls.certificates());
            }
            let client = builder
                .build()
                .map_err(|e| format!("invalid Redis Cluster URLs: {e}"))?;
            Target::Cluster(client)
        } else {
            let url = settings
                .urls
                .first()
                .ok_or_else(|| "url: a Redis URL is required".to_owned())?;
            let client = match &settings.tls {
                Some(tls) => redis::Client::build_with_tls(url.as_str(), tls.certificates()),
                None => redis::Client::open(url.as_str()),
            };
            Target::Single(client.map_err(|e| format!("url: {e}"))?)
        };
        Ok(Self {
            target,
            conn: Mutex::new(None),
            connecting: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The connection, or an error at once while none is made yet.
    fn current(&self) -> RedisResult<Conn> {
        self.conn.lock().clone().ok_or_else(not_connected)
    }

    /// Make the connection (background task and heartbeats only).
    pub(crate) async fn connect(&self) -> RedisResult<()> {
        if self.conn.lock().is_some() || self.connecting.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        let _attempt = ConnectAttempt(&self.connecting);
        let made = match &self.target {
            Target::Single(client) => {
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Duration::from_secs(1))
                    .set_number_of_retries(1);
                ConnectionManager::new_with_config(client.clone(), config)
                    .await
                    .map(Conn::Single)
            }
            Target::Cluster(client) => client.get_async_connection().await.map(Conn::Cluster),
        };
        *self.conn.lock() = Some(made?);
        Ok(())
    }

    async fn run<T: redis::FromRedisValue>(
        &self,
        script: &Script,
        key: &str,
        args: &[String],
    ) -> RedisResult<T> {
        let conn = self.current()?;
        let mut invocation = script.key(key);
        for arg in args {
            invocation.arg(arg);
        }
        match conn {
            Conn::Single(mut conn) => invocation.invoke_async(&mut conn).await,
            Conn::Cluster(mut conn) => invocation.invoke_async(&mut conn).await,
        }
    }

    pub(crate) async fn admit(
        &self,
        key: &str,
        unit: TimeUnit,
        caps: [i64; 4],
        cost: Cost,
    ) -> RedisResult<AdmitReply> {
        let mut args = vec![unit.millis().to_string()];
        args.extend(caps.iter().map(i64::to_string));
        args.extend(cost.0.iter().map(u64::to_string));
        let reply: Vec<i64> = self.run(&ADMIT, key, &args).await?;
        let head = ReplyHead::parse(&reply, 9, "short admission reply")?;
        Ok(AdmitReply {
            refused: head.refused,
            window: head.window,
            window_end_ms: head.window_end_ms,
            now_ms: head.now_ms,
            used: std::array::from_fn(|i| non_negative(reply[5 + i])),
        })
    }

    /// Claim a block (`leased`): `need` all or nothing, `extra` as far as
    /// the window allows.
    pub(crate) async fn claim(
        &self,
        key: &str,
        unit: TimeUnit,
        nodes: u64,
        caps: [i64; 4],
        need: [u64; 4],
        extra: [u64; 4],
    ) -> RedisResult<ClaimReply> {
        let mut args = vec![unit.millis().to_string(), nodes.to_string()];
        args.extend(caps.iter().map(i64::to_string));
        args.extend(need.iter().map(u64::to_string));
        args.extend(extra.iter().map(u64::to_string));
        let reply: Vec<i64> = self.run(&CLAIM, key, &args).await?;
        let head = ReplyHead::parse(&reply, 13, "short claim reply")?;
        Ok(ClaimReply {
            refused: head.refused,
            window: head.window,
            window_end_ms: head.window_end_ms,
            now_ms: head.now_ms,
            grant: std::array::from_fn(|i| non_negative(reply[5 + i])),
            used: std::array::from_fn(|i| non_negative(reply[9 + i])),
        })
    }

    pub(crate) async fn settle(
        &self,
        key: &str,
        admission: &Admission,
        actual: Cost,
    ) -> RedisResult<()> {
        let mut args = vec![
            admission.unit.millis().to_string(),
            admission.window_index.to_string(),
        ];
        args.extend(admission.cost.0.iter().map(u64::to_string));
        args.extend(actual.0.iter().map(u64::to_string));
        let _: i64 = self.run(&SETTLE, key, &args).await?;
        Ok(())
    }

    pub(crate) async fn recover(
        &self,
        key: &str,
        unit: TimeUnit,
        window: u64,
        used: [u64; 4],
        floors: [u64; 4],
    ) -> RedisResult<()> {
        let mut args = vec![unit.millis().to_string(), window.to_string()];
        args.extend(used.iter().map(u64::to_string));
        args.extend(floors.iter().map(u64::to_string));
        let _: i64 = self.run(&RECOVER, key, &args).await?;
        Ok(())
    }

    /// Renew (or, with `leave`, remove) this node's heartbeat.
    pub(crate) async fn heartbeat(
        &self,
        nodes_key: &str,
        node_id: &str,
        ttl_ms: u64,
        leave: bool,
    ) -> RedisResult<HeartbeatReply> {
        self.connect().await?;
        let args = [
            node_id.to_owned(),
            ttl_ms.to_string(),
            if leave { "1" } else { "0" }.to_owned(),
        ];
        let reply: Vec<String> = self.run(&HEARTBEAT, nodes_key, &args).await?;
        let [now, present, ids @ ..] = reply.as_slice() else {
            return Err(RedisError::from((
                redis::ErrorKind::TypeError,
                "short heartbeat reply",
            )));
        };
        Ok(HeartbeatReply {
            now_ms: now.parse().unwrap_or(0),
            present: present == "1",
            ids: ids.to_vec(),
        })
    }
}
