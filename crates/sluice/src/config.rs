//! The configuration file (`sluice serve --config FILE`), DESIGN section 3.
//!
//! TOML is read into raw sections in which every key is optional and unknown
//! keys are refused, then turned into a validated [`Config`] in one step; a
//! bad value stops the start with a message naming the key.

use anyhow::{Context, bail};
use serde::Deserialize;
use sluice_core::RejectStatus;
use sluice_limits::redis::{FailurePolicy, RedisSettings, Strategy};
use sluice_store::PostgresUrl;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The most gateway worker threads a config may ask for.
const MAX_WORKERS: usize = 256;

mod listener;
mod redis_tls;

pub use sluice_gateway::AcceptSettings;
pub use sluice_gateway::tls::UpstreamTrust;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Gateway listener address.
    pub gateway_listen: SocketAddr,
    /// Admin listener address.
    pub admin_listen: SocketAddr,
    /// Where definitions are stored.
    pub store: StoreLocation,
    /// Redis counters; `None` counts on this node.
    pub redis: Option<RedisSettings>,
    /// Status of a throttled answer when an API does not choose (503 or 429).
    pub reject_status: RejectStatus,
    /// Upstream connect timeout.
    pub connect_timeout: Duration,
    /// Upstream time to response headers.
    pub first_byte_timeout: Duration,
    /// Upstream idle pooled connection lifetime.
    pub pool_idle_timeout: Duration,
    /// The gateway listener's accept phase: client timeouts, request head
    /// and connection limits, TLS.
    pub accept: AcceptSettings,
    /// What upstream HTTPS endpoints are verified against.
    pub upstream_trust: UpstreamTrust,
    /// How the admin listener serves (HTTPS when its `tls` is set) and
    /// bounds its clients.
    pub admin: sluice_admin::AdminListener,
    /// Shutdown drain bound.
    pub drain_timeout: Duration,
    /// Stamp forwarded requests with `X-Sluice-Admission`.
    pub admission_header: bool,
    /// Abort a response when the backend sends nothing for this long.
    pub stream_idle_timeout: Duration,
    /// Largest AI request body read for token accounting.
    pub max_ai_request_bytes: usize,
    /// Threads serving gateway connections, each with its own runtime and
    /// upstream pools.
    pub workers: usize,
    /// Log format.
    pub log_format: LogFormat,
    /// Log level filter (`info`, `sluice=debug`, ...).
    pub log_level: String,
    /// One access log line per request.
    pub access_log: bool,
    /// File holding the key endpoint credentials are sealed with.
    pub secrets_key_file: Option<PathBuf>,
}

/// Where definitions live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreLocation {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL database that several nodes share.
    Postgres {
        /// The database.
        url: PostgresUrl,
        /// This node's own files (pepper, secrets key, snapshot).
        data_dir: PathBuf,
    },
}

impl StoreLocation {
    /// The directory Sluice keeps its own files in: next to an SQLite
    /// database, or `store.data_dir` with PostgreSQL.
    pub fn data_dir(&self) -> PathBuf {
        match self {
            StoreLocation::Sqlite(path) => path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
            StoreLocation::Postgres { data_dir, .. } => data_dir.clone(),
        }
    }

    /// True when other nodes share these definitions.
    pub fn is_shared(&self) -> bool {
        matches!(self, StoreLocation::Postgres { .. })
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    gateway: RawGateway,
    #[serde(default)]
    admin: RawAdmin,
    #[serde(default)]
    store: RawStore,
    #[serde(default)]
    counters: RawCounters,
    #[serde(default)]
    log: RawLog,
    #[serde(default)]
    secrets: RawSecrets,
}

/// `[secrets]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSecrets {
    /// File with the 32-byte key (64 hex digits) endpoint credentials are
    /// sealed with. Default: `SLUICE_SECRETS_KEY`, else `secrets-key` in the
    /// data directory, generated on first start.
    key_file: Option<PathBuf>,
}

/// `[gateway]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawGateway {
    /// Listen address. Default `127.0.0.1:8280`.
    listen: SocketAddr,
    /// Status for throttled requests when the API does not set one: 503 or 429.
    reject_status: u16,
    /// Upstream TCP connect timeout. Default `5s`.
    #[serde(with = "humantime_serde")]
    connect_timeout: Duration,
    /// Upstream time from request to response headers. Default `60s`.
    #[serde(with = "humantime_serde")]
    first_byte_timeout: Duration,
    /// Idle upstream connections are closed after this. Default `90s`.
    #[serde(with = "humantime_serde")]
    pool_idle_timeout: Duration,
    /// Time a client has to send its request headers. Default `10s`.
    #[serde(with = "humantime_serde")]
    header_read_timeout: Duration,
    /// Time in-flight requests get on shutdown. Default `30s`.
    #[serde(with = "humantime_serde")]
    drain_timeout: Duration,
    /// Add `X-Sluice-Admission` to forwarded requests. Default `false`.
    admission_header: bool,
    /// Abort a response when the backend sends nothing for this long.
    /// Default `60s`; streams have no total timeout.
    #[serde(with = "humantime_serde")]
    stream_idle_timeout: Duration,
    /// Largest AI request body read for token accounting, in bytes (413
    /// above). Default 10 MiB.
    max_ai_request_bytes: usize,
    /// Threads serving gateway connections; 0 (the default) is one per
    /// CPU core.
    workers: usize,
    /// While the gateway reads a request body, the longest a client may send
    /// nothing (408 after it). Default `30s`.
    #[serde(with = "humantime_serde")]
    body_read_timeout: Duration,
    /// A client connection with no request in progress is closed after this.
    /// Default `60s`.
    #[serde(with = "humantime_serde")]
    idle_timeout: Duration,
    /// Open client connections at most; at the limit the longest-idle one is
    /// closed for a new client. Default 10000.
    max_connections: usize,
    /// Header fields per request at most (431 above). Default 100.
    max_headers: usize,
    /// Bytes of header names and values per request at most (431 above).
    /// Default 32768.
    max_header_bytes: usize,
    /// Bytes of the request target at most (414 above). Default 16384.
    max_uri_bytes: usize,
    /// PEM certificate chain: with `tls_key`, the listener serves HTTPS.
    tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    tls_key: Option<PathBuf>,
    /// PEM CA certificates HTTPS endpoints are verified against instead of
    /// the system roots.
    upstream_ca_file: Option<PathBuf>,
}

impl Default for RawGateway {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8280)),
            reject_status: 503,
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(60),
            pool_idle_timeout: Duration::from_secs(90),
            header_read_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
            admission_header: false,
            stream_idle_timeout: Duration::from_secs(60),
            max_ai_request_bytes: 10 * 1024 * 1024,
            workers: 0,
            body_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
            max_headers: 100,
            max_header_bytes: 32 * 1024,
            max_uri_bytes: 16 * 1024,
            tls_cert: None,
            tls_key: None,
            upstream_ca_file: None,
        }
    }
}

/// `[admin]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawAdmin {
    /// Listen address. Default `127.0.0.1:9443`.
    listen: SocketAddr,
    /// PEM certificate chain: with `tls_key`, the listener serves HTTPS.
    tls_cert: Option<PathBuf>,
    /// PEM private key of `tls_cert`.
    tls_key: Option<PathBuf>,
    /// Time for a TLS handshake and for each request head; also how long a
    /// keep-alive connection may wait for its next request. Default `10s`.
    #[serde(with = "humantime_serde")]
    header_read_timeout: Duration,
    /// Time to send a whole request body (408 after it). Default `30s`.
    #[serde(with = "humantime_serde")]
    body_read_timeout: Duration,
    /// Open admin connections at most; further clients wait in the listen
    /// backlog. Default 256.
    max_connections: usize,
}

impl Default for RawAdmin {
    fn default() -> Self {
        let listener = sluice_admin::AdminListener::default();
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9443)),
            tls_cert: None,
            tls_key: None,
            header_read_timeout: listener.header_read_timeout,
            body_read_timeout: listener.body_read_timeout,
            max_connections: listener.max_connections,
        }
    }
}

/// `[store]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawStore {
    /// `sqlite://PATH` (relative) or `sqlite:///ABSOLUTE/PATH`, or
    /// `postgres://user:pass@host:5432/db` for definitions shared by several
    /// nodes. Default `sqlite://sluice-data/sluice.db`.
    url: String,
    /// With PostgreSQL, the directory of this node's own files (key pepper,
    /// secrets key, generated admin password, last snapshot of the
    /// definitions). Default `sluice-data`. SQLite keeps them next to the
    /// database file.
    data_dir: Option<PathBuf>,
}

impl Default for RawStore {
    fn default() -> Self {
        Self {
            url: "sqlite://sluice-data/sluice.db".into(),
            data_dir: None,
        }
    }
}

/// `[counters]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCounters {
    /// `local` (default: each node counts alone) or `redis` (the cluster
    /// counts in Redis).
    backend: String,
    /// Redis settings, read when `backend = "redis"`.
    redis: Option<RawRedis>,
}

impl Default for RawCounters {
    fn default() -> Self {
        Self {
            backend: "local".into(),
            redis: None,
        }
    }
}

/// `[counters.redis]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRedis {
    /// `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS.
    /// Default `redis://127.0.0.1:6379`.
    url: String,
    /// Seed nodes of a Redis Cluster, all `redis://` or all `rediss://`;
    /// when set, `url` is not used.
    urls: Option<Vec<String>>,
    /// PEM CA certificates a `rediss://` server is verified against instead
    /// of the system roots.
    ca_file: Option<PathBuf>,
    /// PEM certificate chain this node presents to a `rediss://` server
    /// that requires one; with `client_key`.
    client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert`.
    client_key: Option<PathBuf>,
    /// `leased` (default: claim blocks, admit locally) or `exact` (one
    /// script call per admission).
    strategy: String,
    /// One deadline for all Redis work of one admission. Default `25ms`.
    #[serde(with = "humantime_serde")]
    timeout: Duration,
    /// `local-share` (default), `fail-open` or `fail-closed`.
    on_failure: String,
    /// Floor for the live-node count. Default 1.
    min_nodes: u64,
    /// Prefix of every key. Default `sluice`.
    key_prefix: String,
}

impl Default for RawRedis {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            urls: None,
            ca_file: None,
            client_cert: None,
            client_key: None,
            strategy: "leased".into(),
            timeout: Duration::from_millis(25),
            on_failure: "local-share".into(),
            min_nodes: 1,
            key_prefix: "sluice".into(),
        }
    }
}

impl RawRedis {
    fn validate(self) -> anyhow::Result<RedisSettings> {
        let strategy = match self.strategy.as_str() {
            "exact" => Strategy::Exact,
            "leased" => Strategy::Leased,
            other => {
                bail!("counters.redis.strategy: unknown strategy {other:?}; expected \"exact\"")
            }
        };
        let on_failure = match self.on_failure.as_str() {
            "local-share" => FailurePolicy::LocalShare,
            "fail-open" => FailurePolicy::FailOpen,
            "fail-closed" => FailurePolicy::FailClosed,
            other => bail!(
                "counters.redis.on_failure: unknown policy {other:?}; expected \"local-share\", \"fail-open\" or \"fail-closed\""
            ),
        };
        if self.timeout.is_zero() {
            bail!("counters.redis.timeout: must be more than 0");
        }
        if self.min_nodes == 0 {
            bail!("counters.redis.min_nodes: must be at least 1");
        }
        if self.key_prefix.is_empty() || self.key_prefix.contains(['{', '}']) {
            bail!("counters.redis.key_prefix: must be non-empty and without braces");
        }
        let (urls, cluster) = match self.urls {
            Some(urls) if urls.is_empty() => {
                bail!("counters.redis.urls: list at least one seed node")
            }
            Some(urls) => (urls, true),
            None => (vec![self.url], false),
        };
        let key = if cluster {
            "counters.redis.urls"
        } else {
            "counters.redis.url"
        };
        for url in &urls {
            if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
                bail!("{key}: {url:?} must start with redis:// or rediss://");
            }
            // The Redis client reads `#insecure` as "skip the certificate
            // check"; Sluice always verifies.
            if url.contains('#') {
                bail!(
                    "{key}: a URL fragment (#...) is not accepted: the Redis server's certificate is always verified (counters.redis.ca_file sets a private CA), and a '#' in a password is written %23"
                );
            }
        }
        let tls_urls = urls
            .iter()
            .filter(|url| url.starts_with("rediss://"))
            .count();
        if tls_urls != 0 && tls_urls != urls.len() {
            bail!("{key}: all redis:// or all rediss://, not both");
        }
        let tls = redis_tls::TlsFiles {
            ca_file: self.ca_file.as_deref(),
            client_cert: self.client_cert.as_deref(),
            client_key: self.client_key.as_deref(),
        }
        .read(tls_urls != 0)?;
        Ok(RedisSettings {
            urls,
            cluster,
            tls,
            strategy,
            timeout: self.timeout,
            on_failure,
            min_nodes: self.min_nodes,
            key_prefix: self.key_prefix,
        })
    }
}

/// `[log]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLog {
    /// `text` or `json`.
    format: LogFormat,
    /// Level filter, `info` by default.
    level: String,
    /// One access log line per request. Default `true`.
    access_log: bool,
}

impl Default for RawLog {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
            access_log: true,
        }
    }
}

impl Config {
    /// The embedded defaults (no config file).
    pub fn defaults() -> Self {
        Self::from_raw(RawConfig::default()).expect("the defaults are valid")
    }

    /// Read and validate a config file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Validate config text.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| anyhow::anyhow!("{e}"))?;
        Self::from_raw(raw)
    }

    fn from_raw(raw: RawConfig) -> anyhow::Result<Self> {
        let reject_status = RejectStatus::from_code(u64::from(raw.gateway.reject_status))
            .ok_or_else(|| anyhow::anyhow!("gateway.reject_status: must be 503 or 429"))?;
        let redis = match raw.counters.backend.as_str() {
            "local" => None,
            "redis" => Some(raw.counters.redis.unwrap_or_default().validate()?),
            other => bail!(
                "counters.backend: unknown backend {other:?}; expected \"local\" or \"redis\""
            ),
        };
        if raw.gateway.listen == raw.admin.listen && raw.gateway.listen.port() != 0 {
            bail!("admin.listen: must differ from gateway.listen");
        }
        for (key, value) in [
            ("gateway.connect_timeout", raw.gateway.connect_timeout),
            ("gateway.first_byte_timeout", raw.gateway.first_byte_timeout),
            (
                "gateway.header_read_timeout",
                raw.gateway.header_read_timeout,
            ),
            ("gateway.body_read_timeout", raw.gateway.body_read_timeout),
            ("gateway.idle_timeout", raw.gateway.idle_timeout),
        ] {
            if value.is_zero() {
                bail!("{key}: must be more than 0");
            }
        }
        if raw.gateway.workers > MAX_WORKERS {
            bail!("gateway.workers: must be at most {MAX_WORKERS} (0 is one per CPU core)");
        }
        tracing_subscriber::EnvFilter::try_new(&raw.log.level)
            .map_err(|e| anyhow::anyhow!("log.level: {e}"))?;
        Ok(Self {
            gateway_listen: raw.gateway.listen,
            admin_listen: raw.admin.listen,
            store: parse_store(raw.store)?,
            redis,
            reject_status,
            connect_timeout: raw.gateway.connect_timeout,
            first_byte_timeout: raw.gateway.first_byte_timeout,
            pool_idle_timeout: raw.gateway.pool_idle_timeout,
            accept: listener::accept_settings(&raw.gateway)?,
            upstream_trust: listener::upstream_trust(raw.gateway.upstream_ca_file.as_deref())?,
            admin: listener::admin_listener(&raw.admin)?,
            drain_timeout: raw.gateway.drain_timeout,
            admission_header: raw.gateway.admission_header,
            stream_idle_timeout: raw.gateway.stream_idle_timeout,
            max_ai_request_bytes: raw.gateway.max_ai_request_bytes,
            workers: match raw.gateway.workers {
                0 => sluice_gateway::cpu_cores(),
                workers => workers,
            },
            log_format: raw.log.format,
            log_level: raw.log.level,
            access_log: raw.log.access_log,
            secrets_key_file: raw.secrets.key_file,
        })
    }
}

fn parse_store(raw: RawStore) -> anyhow::Result<StoreLocation> {
    let url = raw.url.as_str();
    if let Some(path) = url.strip_prefix("sqlite://") {
        if path.is_empty() {
            bail!("store.url: the sqlite URL needs a path, e.g. sqlite://sluice-data/sluice.db");
        }
        if raw.data_dir.is_some() {
            bail!(
                "store.data_dir: only with a postgres:// store.url; SQLite keeps Sluice's files next to the database file"
            );
        }
        return Ok(StoreLocation::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        let url = PostgresUrl::parse(url).map_err(|e| anyhow::anyhow!("store.url: {e}"))?;
        let data_dir = raw.data_dir.unwrap_or_else(|| PathBuf::from("sluice-data"));
        if data_dir.as_os_str().is_empty() {
            bail!("store.data_dir: must not be empty");
        }
        return Ok(StoreLocation::Postgres { url, data_dir });
    }
    bail!("store.url: unsupported URL; expected sqlite://PATH or postgres://user:pass@host:5432/db")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_gives_the_defaults() {
        let config = Config::parse("").unwrap();
        assert_eq!(config.gateway_listen, "127.0.0.1:8280".parse().unwrap());
        assert_eq!(config.admin_listen, "127.0.0.1:9443".parse().unwrap());
        assert_eq!(
            config.store,
            StoreLocation::Sqlite(PathBuf::from("sluice-data/sluice.db"))
        );
        assert_eq!(config.store.data_dir(), PathBuf::from("sluice-data"));
        assert_eq!(config.reject_status, RejectStatus::ServiceUnavailable);
    }

    #[test]
    fn gateway_workers_default_to_one_per_core_and_are_bounded() {
        assert_eq!(
            Config::parse("").unwrap().workers,
            sluice_gateway::cpu_cores()
        );
        let three = Config::parse("[gateway]\nworkers = 3").unwrap();
        assert_eq!(three.workers, 3);
        let error = Config::parse("[gateway]\nworkers = 1000").unwrap_err();
        assert!(error.to_string().starts_with("gateway.workers:"), "{error}");
    }

    #[test]
    fn reads_every_section() {
        let config = Config::parse(
            r#"
            [gateway]
            listen = "127.0.0.1:18280"
            reject_status = 429
            first_byte_timeout = "2s"
            [admin]
            listen = "127.0.0.1:19443"
            [store]
            url = "sqlite:///var/lib/sluice/defs.db"
            [counters]
            backend = "local"
            [log]
            format = "json"
            access_log = false
            "#,
        )
        .unwrap();
        assert_eq!(config.reject_status, RejectStatus::TooManyRequests);
        assert_eq!(config.first_byte_timeout, Duration::from_secs(2));
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(!config.access_log);
        assert_eq!(config.store.data_dir(), PathBuf::from("/var/lib/sluice"));
    }

    #[test]
    fn a_postgres_store_is_shared_and_keeps_this_nodes_files_in_its_data_dir() {
        let config = Config::parse(
            "[store]\nurl = \"postgres://sluice:hunter2@db:5432/sluice\"\ndata_dir = \"/var/lib/sluice\"\n",
        )
        .unwrap();
        let by_default =
            Config::parse("[store]\nurl = \"postgresql://sluice@db/sluice\"\n").unwrap();

        assert!(config.store.is_shared());
        assert_eq!(config.store.data_dir(), PathBuf::from("/var/lib/sluice"));
        assert_eq!(by_default.store.data_dir(), PathBuf::from("sluice-data"));
        assert!(!Config::defaults().store.is_shared());
        assert!(!format!("{config:?}").contains("hunter2"), "{config:?}");
    }

    #[test]
    fn bad_store_settings_are_refused_naming_the_key_and_never_the_password() {
        let tls = Config::parse("[store]\nurl = \"postgres://u:hunter2@db/x?sslmode=require\"\n")
            .unwrap_err();
        let scheme = Config::parse("[store]\nurl = \"mysql://u:hunter2@db/x\"\n").unwrap_err();
        let data_dir = Config::parse("[store]\nurl = \"sqlite://x/sluice.db\"\ndata_dir = \"d\"\n")
            .unwrap_err();

        for error in [&tls, &scheme] {
            assert!(error.to_string().contains("store.url"), "{error}");
            assert!(!error.to_string().contains("hunter2"), "{error}");
        }
        assert!(tls.to_string().contains("sslmode"), "{tls}");
        assert!(
            data_dir.to_string().contains("store.data_dir"),
            "{data_dir}"
        );
    }

    #[test]
    fn unknown_key_is_refused_by_name() {
        let error = Config::parse("[gateway]\nlisten_addr = \"127.0.0.1:1\"\n").unwrap_err();
        assert!(error.to_string().contains("listen_addr"), "{error}");
        let error = Config::parse("[gatway]\n").unwrap_err();
        assert!(error.to_string().contains("gatway"), "{error}");
    }

    #[test]
    fn bad_values_are_refused_naming_the_key() {
        let status = Config::parse("[gateway]\nreject_status = 500\n").unwrap_err();
        assert!(
            status.to_string().contains("gateway.reject_status"),
            "{status}"
        );
        let listen = Config::parse("[gateway]\nlisten = \"nowhere\"\n").unwrap_err();
        assert!(listen.to_string().contains("listen"), "{listen}");
        let store = Config::parse("[store]\nurl = \"mysql://x\"\n").unwrap_err();
        assert!(store.to_string().contains("store.url"), "{store}");
        let format = Config::parse("[log]\nformat = \"xml\"\n").unwrap_err();
        assert!(format.to_string().contains("format"), "{format}");
    }

    #[test]
    fn reads_redis_counters() {
        let config = Config::parse(
            "[counters]\nbackend = \"redis\"\n[counters.redis]\nurl = \"redis://127.0.0.1:7000\"\non_failure = \"fail-closed\"\ntimeout = \"40ms\"\n",
        )
        .unwrap();
        let redis = config.redis.unwrap();
        assert_eq!(redis.urls, ["redis://127.0.0.1:7000"]);
        assert_eq!(redis.on_failure, FailurePolicy::FailClosed);
        assert_eq!(redis.timeout, Duration::from_millis(40));
        assert!(!redis.cluster);
        let cluster = Config::parse(
            "[counters]\nbackend = \"redis\"\n[counters.redis]\nurls = [\"redis://a:7000\", \"redis://b:7001\"]\n",
        )
        .unwrap();
        assert!(cluster.redis.unwrap().cluster);
    }

    #[test]
    fn bad_redis_settings_name_the_key() {
        let policy = Config::parse(
            "[counters]\nbackend = \"redis\"\n[counters.redis]\non_failure = \"retry\"\n",
        )
        .unwrap_err();
        assert!(
            policy.to_string().contains("counters.redis.on_failure"),
            "{policy}"
        );
        let url = Config::parse(
            "[counters]\nbackend = \"redis\"\n[counters.redis]\nurl = \"http://x\"\n",
        )
        .unwrap_err();
        assert!(url.to_string().contains("counters.redis.url"), "{url}");
    }

    #[test]
    fn admin_listener_bounds_are_read_and_a_zero_connection_limit_is_refused() {
        let config = Config::parse(
            "[admin]\nheader_read_timeout = \"2s\"\nbody_read_timeout = \"5s\"\nmax_connections = 8\n",
        )
        .unwrap();
        assert_eq!(config.admin.header_read_timeout, Duration::from_secs(2));
        assert_eq!(config.admin.body_read_timeout, Duration::from_secs(5));
        assert_eq!(config.admin.max_connections, 8);
        assert!(config.admin.tls.is_none());

        let zero = Config::parse("[admin]\nmax_connections = 0\n").unwrap_err();
        assert!(zero.to_string().contains("admin.max_connections"), "{zero}");
    }
}
