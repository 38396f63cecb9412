//! Wiring: from a validated [`Config`] to a running gateway and admin listener.
//!
//! Opens the store, loads the key pepper, creates the first admin user,
//! installs the metrics recorder, builds the first routing snapshot (from the
//! store, or from the local snapshot when a shared store is down), starts the
//! definition sync, binds both listeners and serves until [`Running::shutdown`].

use crate::config::{Config, StoreLocation};
use crate::reload::StoreReloader;
use crate::secrets::{load_pepper, load_secrets_key};
use crate::snapshot_file::SnapshotFile;
use crate::sync::{DEGRADED, DefinitionSync, POLL_INTERVAL};
use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sluice_admin::BootstrapError;
use sluice_admin::{AdminState, Readiness};
use sluice_gateway::{Gateway, GatewaySettings, UpstreamSettings};
use sluice_limits::redis::RedisCounters;
use sluice_limits::{Clock, Counters, LocalCounters, SystemClock};
use sluice_store::{
    DefinitionStore, PostgresStore, PostgresTimeouts, SealedStore, SecretSealer, SqliteStore,
    StoreError,
};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What [`start`] takes besides the config file.
pub struct StartOptions {
    /// The limiter's clock.
    pub clock: Arc<dyn Clock>,
    /// First admin password (`SLUICE_ADMIN_PASSWORD`).
    pub admin_password: Option<String>,
    /// Key pepper (`SLUICE_KEY_PEPPER`); generated into the data directory when absent.
    pub key_pepper: Option<String>,
    /// Key endpoint secrets are sealed with (`SLUICE_SECRETS_KEY`, 64 hex
    /// digits); from `[secrets] key_file` or generated when absent.
    pub secrets_key: Option<String>,
}

impl Default for StartOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock::new()),
            admin_password: None,
            key_pepper: None,
            secrets_key: None,
        }
    }
}

/// A running Sluice.
pub struct Running {
    /// Where the gateway listens.
    pub gateway_addr: SocketAddr,
    /// Where the admin API listens.
    pub admin_addr: SocketAddr,
    /// The data plane (for tests and metrics).
    pub gateway: Arc<Gateway>,
    /// The file holding the generated first admin password, if one was written.
    pub initial_password_file: Option<PathBuf>,
    shutdown: watch::Sender<bool>,
    gateway_task: JoinHandle<std::io::Result<()>>,
    admin_task: JoinHandle<std::io::Result<()>>,
    definition_sync: DefinitionSync,
}

impl Running {
    /// Stop accepting, drain in-flight requests (bounded), and return.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.gateway_task.await.context("gateway task")??;
        self.admin_task.await.context("admin task")??;
        self.definition_sync.stop().await;
        if let Counters::Redis(redis) = self.gateway.counters() {
            redis.leave().await;
        }
        Ok(())
    }
}

/// Start Sluice.
pub async fn start(config: &Config, options: StartOptions) -> anyhow::Result<Running> {
    let data_dir = config.store.data_dir();
    let (secrets_key, created) = load_secrets_key(
        &data_dir,
        config.secrets_key_file.as_deref(),
        options.secrets_key,
    )
    .context("secrets.key_file: cannot load the key endpoint credentials are sealed with")?;
    if let Some(path) = created {
        tracing::warn!(
            path = %path.display(),
            "generated the key that seals endpoint credentials; back it up: without it they cannot be read"
        );
    }
    let sealer = SecretSealer::new(&secrets_key);
    let store: Arc<dyn DefinitionStore> = match &config.store {
        StoreLocation::Sqlite(path) => Arc::new(SealedStore::new(
            SqliteStore::open(path)
                .with_context(|| format!("cannot open the store {}", path.display()))?,
            sealer,
        )),
        StoreLocation::Postgres { url, .. } => Arc::new(SealedStore::new(
            PostgresStore::new(url, PostgresTimeouts::default())
                .with_context(|| format!("cannot set up the store {url}"))?,
            sealer,
        )),
    };
    let pepper: Arc<[u8]> = load_pepper(&data_dir, options.key_pepper)?.into();
    let initial_password_file = bootstrap_admin(
        &store,
        options.admin_password,
        &data_dir,
        config.store.is_shared(),
    )
    .await?;

    let metrics = metrics_handle();
    let cluster_warning =
        crate::cluster::announce(config.store.is_shared(), config.redis.is_none());
    let counters = match &config.redis {
        None => Counters::Local(LocalCounters::new()),
        Some(settings) => Counters::Redis(
            RedisCounters::start(settings.clone(), Arc::clone(&options.clock))
                .context("cannot set up the Redis counters")?,
        ),
    };
    let gateway = Gateway::new(gateway_settings(config), options.clock, &pepper, counters);
    let snapshot_file = config
        .store
        .is_shared()
        .then(|| SnapshotFile::in_dir(&data_dir, SecretSealer::new(&secrets_key)));
    let reloader = Arc::new(StoreReloader::new(
        Arc::clone(&store),
        Arc::clone(&gateway),
        snapshot_file,
    ));
    let health = crate::sync::first_load(&reloader, config.store.is_shared()).await?;
    let definition_sync =
        DefinitionSync::start(Arc::clone(&reloader), Arc::clone(&health), POLL_INTERVAL)
            .context("cannot start the definition sync")?;

    let gateway_listener = TcpListener::bind(config.gateway_listen)
        .await
        .with_context(|| format!("gateway.listen: cannot listen on {}", config.gateway_listen))?;
    let admin_listener = TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("admin.listen: cannot listen on {}", config.admin_listen))?;
    let gateway_addr = gateway_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;

    let admin_router = match config.admin.tls {
        Some(_) => sluice_admin::tls_router,
        None => sluice_admin::router,
    };
    let admin = admin_router(AdminState {
        store: Arc::clone(&store),
        reload: reloader,
        pepper,
        metrics: {
            let gateway = Arc::clone(&gateway);
            Arc::new(move || {
                gateway.window_reports();
                metrics.render()
            })
        },
        readiness: {
            let (health, gateway) = (Arc::clone(&health), Arc::clone(&gateway));
            let shared = config.store.is_shared();
            Arc::new(move || {
                // The sync's last poll: never a store call on an async worker.
                let store_ok = health.reachable();
                let mut readiness = Readiness {
                    ready: store_ok,
                    detail: serde_json::json!({
                        "store": match (store_ok, shared) {
                            (true, _) => "ok",
                            (false, true) => DEGRADED,
                            (false, false) => "unavailable",
                        },
                        "counters": gateway.counters().kind(),
                        "counters_degraded": gateway.counters().degraded(),
                        "apis": gateway.route_count(),
                    }),
                };
                if let Some(warning) = cluster_warning {
                    readiness.detail["cluster"] = warning.into();
                }
                readiness
            })
        },
    });

    let (shutdown, signal) = watch::channel(false);
    let gateway_task = tokio::spawn(sluice_gateway::serve(
        Arc::clone(&gateway),
        gateway_listener,
        wait_for(signal.clone()),
    ));
    let admin_task = tokio::spawn(sluice_admin::serve(
        admin_listener,
        admin,
        config.admin.clone(),
        wait_for(signal),
    ));
    tracing::info!(%gateway_addr, %admin_addr, "Sluice is running");
    Ok(Running {
        gateway_addr,
        admin_addr,
        gateway,
        initial_password_file,
        shutdown,
        gateway_task,
        admin_task,
        definition_sync,
    })
}

/// Create the first admin user unless it exists. On a blocking thread: the
/// store blocks. A shared store that cannot be reached is no reason not to
/// start (the node may serve its local snapshot): the user is created by the
/// first node that starts while the store is up.
async fn bootstrap_admin(
    store: &Arc<dyn DefinitionStore>,
    password: Option<String>,
    data_dir: &std::path::Path,
    shared: bool,
) -> anyhow::Result<Option<PathBuf>> {
    let (store, data_dir) = (Arc::clone(store), data_dir.to_owned());
    let created = tokio::task::spawn_blocking(move || {
        sluice_admin::bootstrap_admin(store.as_ref(), password, &data_dir)
    })
    .await
    .context("the admin bootstrap task failed")?;
    match created {
        Ok(file) => Ok(file),
        Err(BootstrapError::Store(StoreError::Unavailable(reason))) if shared => {
            tracing::warn!(%reason, "cannot check the first admin user: the definition store is unavailable");
            Ok(None)
        }
        Err(error) => Err(error).context("cannot create the first admin user"),
    }
}

fn gateway_settings(config: &Config) -> GatewaySettings {
    GatewaySettings {
        default_reject_status: config.reject_status,
        upstream: UpstreamSettings {
            connect_timeout: config.connect_timeout,
            first_byte_timeout: config.first_byte_timeout,
            pool_idle_timeout: config.pool_idle_timeout,
            trust: config.upstream_trust.clone(),
            ..UpstreamSettings::default()
        },
        admission_header: config.admission_header,
        access_log: config.access_log,
        accept: config.accept.clone(),
        drain_timeout: config.drain_timeout,
        stream_idle_timeout: config.stream_idle_timeout,
        max_ai_request_bytes: config.max_ai_request_bytes,
        workers: config.workers,
    }
}

async fn wait_for(mut signal: watch::Receiver<bool>) {
    let _ = signal.wait_for(|stop| *stop).await;
}

/// The process-wide Prometheus recorder, installed on first use.
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets(&[
                    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05,
                    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ])
                .expect("bucket list is not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .expect("can spawn the metrics upkeep thread");
            handle
        })
        .clone()
}
