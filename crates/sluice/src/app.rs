//! Wiring: from a validated [`Config`] to a running gateway and admin listener.
//!
//! Opens the store, loads the key pepper, creates the first admin user,
//! installs the metrics recorder, builds the first routing snapshot, binds both
//! listeners and serves until [`Running::shutdown`].

use crate::config::{Config, StoreLocation};
use crate::reload::StoreReloader;
use crate::secrets::{load_pepper, load_secrets_key};
use anyhow::Context;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sluice_admin::{AdminState, Readiness};
use sluice_gateway::{Gateway, GatewaySettings, UpstreamSettings};
use sluice_limits::redis::RedisCounters;
use sluice_limits::{Clock, Counters, LocalCounters, SystemClock};
use sluice_store::{DefinitionStore, SealedStore, SecretSealer, SqliteStore};
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
}

impl Running {
    /// Stop accepting, drain in-flight requests (bounded), and return.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(true);
        self.gateway_task.await.context("gateway task")??;
        self.admin_task.await.context("admin task")??;
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
    };
    let pepper: Arc<[u8]> = load_pepper(&data_dir, options.key_pepper)?.into();
    let initial_password_file =
        sluice_admin::bootstrap_admin(store.as_ref(), options.admin_password, &data_dir)
            .context("cannot create the first admin user")?;

    let metrics = metrics_handle();
    let counters = match &config.redis {
        None => Counters::Local(LocalCounters::new()),
        Some(settings) => Counters::Redis(
            RedisCounters::start(settings.clone(), Arc::clone(&options.clock))
                .context("cannot set up the Redis counters")?,
        ),
    };
    let gateway = Gateway::new(
        gateway_settings(config),
        options.clock,
        Arc::clone(&pepper),
        counters,
    );
    let reloader = Arc::new(StoreReloader {
        store: Arc::clone(&store),
        gateway: Arc::clone(&gateway),
    });
    reloader
        .reload_now()
        .context("cannot load the definitions")?;

    let gateway_listener = TcpListener::bind(config.gateway_listen)
        .await
        .with_context(|| format!("gateway.listen: cannot listen on {}", config.gateway_listen))?;
    let admin_listener = TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("admin.listen: cannot listen on {}", config.admin_listen))?;
    let gateway_addr = gateway_listener.local_addr()?;
    let admin_addr = admin_listener.local_addr()?;

    let admin = sluice_admin::router(AdminState {
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
            let (store, gateway) = (Arc::clone(&store), Arc::clone(&gateway));
            Arc::new(move || {
                let store_ok = store.revision().is_ok();
                Readiness {
                    ready: store_ok,
                    detail: serde_json::json!({
                        "store": if store_ok { "ok" } else { "unavailable" },
                        "counters": gateway.counters().kind(),
                        "counters_degraded": gateway.counters().degraded(),
                        "apis": gateway.route_count(),
                    }),
                }
            })
        },
    });

    let (shutdown, signal) = watch::channel(false);
    let gateway_task = tokio::spawn(sluice_gateway::serve(
        Arc::clone(&gateway),
        gateway_listener,
        wait_for(signal.clone()),
    ));
    let admin_task = tokio::spawn(async move {
        axum::serve(admin_listener, admin)
            .with_graceful_shutdown(wait_for(signal))
            .await
    });
    tracing::info!(%gateway_addr, %admin_addr, "Sluice is running");
    Ok(Running {
        gateway_addr,
        admin_addr,
        gateway,
        initial_password_file,
        shutdown,
        gateway_task,
        admin_task,
    })
}

fn gateway_settings(config: &Config) -> GatewaySettings {
    GatewaySettings {
        default_reject_status: config.reject_status,
        upstream: UpstreamSettings {
            connect_timeout: config.connect_timeout,
            first_byte_timeout: config.first_byte_timeout,
            pool_idle_timeout: config.pool_idle_timeout,
            ..UpstreamSettings::default()
        },
        admission_header: config.admission_header,
        access_log: config.access_log,
        header_read_timeout: config.header_read_timeout,
        drain_timeout: config.drain_timeout,
        stream_idle_timeout: config.stream_idle_timeout,
        max_ai_request_bytes: config.max_ai_request_bytes,
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
