//! The end-to-end harness shared by the integration tests: a Sluice started
//! in-process on `127.0.0.1:0` over a temporary data directory, driven only
//! through its two public doors (the admin REST API and the gateway), plus
//! the mock backend it forwards to.
//!
//! Helpers are named after the domain: publish an API, subscribe an
//! application, get its keys, call the gateway, read a metric. Each test module
//! uses part of them.

#![allow(dead_code)]

use reqwest::header::HeaderMap;
use reqwest::{Client, Method, RequestBuilder};
use serde_json::{Value, json};
use sluice::app::{Running, StartOptions, start};
use sluice::config::{Config, StoreLocation};
use sluice::mock_backend::{MockBackend, MockOptions};
use sluice_limits::{Clock, FakeClock, SystemClock};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tempfile::TempDir;

/// The first admin user's password in every test server.
pub(crate) const ADMIN_PASSWORD: &str = "secret";
/// The key pepper of every test server (fixed, so a restart reads the same keys).
pub(crate) const KEY_PEPPER: &str = "pepper";
/// Base path of the Publisher REST API.
pub(crate) const PUBLISHER: &str = "/api/am/publisher/v4";
/// Base path of the DevPortal REST API.
pub(crate) const DEVPORTAL: &str = "/api/am/devportal/v3";
/// The secrets key (`SLUICE_SECRETS_KEY`) of every node of a test cluster.
pub(crate) const CLUSTER_SECRETS_KEY: &str =
    "5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed5eed";
/// A moment on a minute boundary (epoch ms) for fake-clock tests.
pub(crate) const MINUTE_START_MS: u64 = 28_333_334 * 60_000;

/// WSO2's answer to a request refused by the backend throughput limit.
pub(crate) fn limit_reached_body() -> Value {
    json!({"fault":{"code":900801,"message":"API Limit Reached","description":"API not accepting requests"}})
}

/// A configuration for a test server: both listeners on free ports, the store
/// in `data_dir`, no access log, and the admission stamp on forwarded requests.
pub(crate) fn test_config(data_dir: &Path) -> Config {
    let mut config = Config::defaults();
    config.gateway_listen = "127.0.0.1:0".parse().expect("valid address");
    config.admin_listen = "127.0.0.1:0".parse().expect("valid address");
    config.store = StoreLocation::Sqlite(data_dir.join("sluice.db"));
    config.admission_header = true;
    config.access_log = false;
    config
}

/// `http://ADDR`, the URL of a listener.
pub(crate) fn url_of(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// A mock backend answering at once.
pub(crate) async fn start_mock() -> MockBackend {
    start_mock_with_latency(Duration::ZERO).await
}

/// A mock backend that waits `latency` before each answer.
pub(crate) async fn start_mock_with_latency(latency: Duration) -> MockBackend {
    start_mock_with(MockOptions {
        latency,
        ..MockOptions::default()
    })
    .await
}

/// A mock backend with these options (latency, AI usage rule).
pub(crate) async fn start_mock_with(options: MockOptions) -> MockBackend {
    MockBackend::start("127.0.0.1:0".parse().expect("valid address"), options)
        .await
        .expect("the mock backend starts")
}

/// An address on which nothing listens: bound once, then released.
pub(crate) fn dead_endpoint() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("bound address")
}

/// A backend that reads each request and never answers.
pub(crate) async fn silent_backend() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a free port");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                while matches!(
                    tokio::io::AsyncReadExt::read(&mut stream, &mut buffer).await,
                    Ok(n) if n > 0
                ) {}
            });
        }
    });
    addr
}

/// A running Sluice and clients for its admin API and gateway.
pub(crate) struct Sluice {
    pub(crate) gateway_addr: SocketAddr,
    pub(crate) admin_addr: SocketAddr,
    http: Client,
    running: Option<Running>,
    process: Option<ServerProcess>,
    data_dir: Option<TempDir>,
}

/// The real `sluice serve` binary as a child process, and everything it has
/// written to stdout and stderr so far.
struct ServerProcess {
    child: std::process::Child,
    output: Arc<parking_lot::Mutex<String>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

static NEXT_NAME: AtomicUsize = AtomicUsize::new(0);

/// A name no other application of this test process has.
fn unique_name(prefix: &str) -> String {
    format!("{prefix}-{}", NEXT_NAME.fetch_add(1, Ordering::SeqCst))
}

impl Sluice {
    /// Sluice on the real clock with the test configuration.
    pub(crate) async fn start() -> Self {
        Self::start_configured(Arc::new(SystemClock::new()), |_| {}).await
    }

    /// Sluice whose limiter reads `clock`.
    pub(crate) async fn start_on(clock: &FakeClock) -> Self {
        Self::start_configured(Arc::new(clock.clone()), |_| {}).await
    }

    /// Sluice in its own temporary data directory, with the test
    /// configuration changed by `configure`.
    pub(crate) async fn start_configured(
        clock: Arc<dyn Clock>,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let data_dir = TempDir::new().expect("a temporary directory");
        let mut config = test_config(data_dir.path());
        configure(&mut config);
        let mut sluice = Self::start_with(&config, clock, Some(ADMIN_PASSWORD.into())).await;
        sluice.data_dir = Some(data_dir);
        sluice
    }

    /// Sluice with exactly this configuration (its data directory is the
    /// caller's) and this first admin password.
    pub(crate) async fn start_with(
        config: &Config,
        clock: Arc<dyn Clock>,
        admin_password: Option<String>,
    ) -> Self {
        Self::start_with_options(
            config,
            StartOptions {
                clock,
                admin_password,
                key_pepper: Some(KEY_PEPPER.into()),
                secrets_key: None,
            },
        )
        .await
    }

    /// One node of a cluster: exactly this configuration (its store and data
    /// directory are the caller's), on the real clock, with the pepper and
    /// secrets key every node of a cluster must share.
    pub(crate) async fn start_node(config: &Config) -> Self {
        Self::start_with_options(
            config,
            StartOptions {
                clock: Arc::new(SystemClock::new()),
                admin_password: Some(ADMIN_PASSWORD.into()),
                key_pepper: Some(KEY_PEPPER.into()),
                secrets_key: Some(CLUSTER_SECRETS_KEY.into()),
            },
        )
        .await
    }

    async fn start_with_options(config: &Config, options: StartOptions) -> Self {
        let running = start(config, options).await.expect("Sluice starts");
        Self {
            gateway_addr: running.gateway_addr,
            admin_addr: running.admin_addr,
            http: http_client(),
            running: Some(running),
            process: None,
            data_dir: None,
        }
    }

    /// The `sluice serve` binary of this build, started as a child process on
    /// free ports over a temporary data directory, with the test admin
    /// password and pepper, the access log on, and `env` added to its
    /// environment (`RUST_LOG`). For what only a process shows: its logs.
    pub(crate) fn spawn_binary(env: &[(&str, &str)]) -> Self {
        let data_dir = TempDir::new().expect("a temporary directory");
        let mut sluice = Self::spawn_binary_in(data_dir.path(), "", env);
        sluice.data_dir = Some(data_dir);
        sluice
    }

    /// [`Sluice::spawn_binary`] over the caller's data directory (kept when
    /// the process ends, for a restart), with `gateway_keys` added to its
    /// `[gateway]` section.
    pub(crate) fn spawn_binary_in(
        data_dir: &Path,
        gateway_keys: &str,
        env: &[(&str, &str)],
    ) -> Self {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};
        let config_path = data_dir.join("sluice.toml");
        std::fs::write(
            &config_path,
            format!(
                "[gateway]\nlisten = \"127.0.0.1:0\"\n{gateway_keys}\n[admin]\nlisten = \"127.0.0.1:0\"\n\
                 [store]\nurl = \"sqlite://{}\"\n",
                data_dir.join("sluice.db").display()
            ),
        )
        .expect("the config file is written");
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("serve")
            .arg("--config")
            .arg(&config_path)
            .env("SLUICE_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("SLUICE_KEY_PEPPER", KEY_PEPPER)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the sluice binary starts");
        let output = Arc::new(parking_lot::Mutex::new(String::new()));
        let (addresses, announced) = std::sync::mpsc::channel();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let stderr = BufReader::new(child.stderr.take().expect("piped stderr"));
        let readers = [
            Box::new(stdout) as Box<dyn BufRead + Send>,
            Box::new(stderr),
        ]
        .into_iter()
        .map(|stream| {
            let (output, addresses) = (Arc::clone(&output), addresses.clone());
            std::thread::spawn(move || {
                for line in stream.lines().map_while(Result::ok) {
                    // "Sluice gateway on http://A, admin API on http://B"
                    if let Some(rest) = line.strip_prefix("Sluice gateway on http://")
                        && let Some((gateway, admin)) = rest.split_once(", admin API on http://")
                    {
                        let _ = addresses.send((gateway.parse(), admin.trim().parse()));
                    }
                    let mut output = output.lock();
                    output.push_str(&line);
                    output.push('\n');
                }
            })
        })
        .collect();
        let process = ServerProcess {
            child,
            output: Arc::clone(&output),
            readers,
        };
        let Ok((Ok(gateway_addr), Ok(admin_addr))) =
            announced.recv_timeout(Duration::from_secs(20))
        else {
            drop(process);
            panic!("sluice did not announce its addresses:\n{}", output.lock());
        };
        Self {
            gateway_addr,
            admin_addr,
            http: http_client(),
            running: None,
            process: Some(process),
            data_dir: None,
        }
    }

    /// The process id of a server started by [`Sluice::spawn_binary`].
    pub(crate) fn pid(&self) -> u32 {
        self.process.as_ref().expect("a spawned binary").child.id()
    }

    /// Stop a server started by [`Sluice::spawn_binary`] and return all it
    /// wrote to stdout and stderr.
    pub(crate) fn stop_binary(mut self) -> String {
        let mut process = self.process.take().expect("a spawned binary");
        let _ = process.child.kill();
        let _ = process.child.wait();
        for reader in std::mem::take(&mut process.readers) {
            let _ = reader.join();
        }
        process.output.lock().clone()
    }

    /// The data directory of a server started by [`Sluice::start_configured`].
    pub(crate) fn data_dir(&self) -> &Path {
        self.data_dir
            .as_ref()
            .expect("a harness-owned data directory")
            .path()
    }

    /// The running server (for what only the process knows).
    pub(crate) fn running(&self) -> &Running {
        self.running.as_ref().expect("not shut down")
    }

    /// Stop accepting, drain and return.
    pub(crate) async fn shutdown(mut self) {
        let running = self.running.take().expect("not shut down");
        running.shutdown().await.expect("clean shutdown");
    }

    // ---- admin REST API ----

    fn admin(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", url_of(self.admin_addr)))
            .basic_auth("admin", Some(ADMIN_PASSWORD))
    }

    /// Send an admin request with a JSON body; the raw reply.
    pub(crate) async fn admin_call(&self, method: Method, path: &str, body: &Value) -> Reply {
        Reply::from(self.admin(method, path).json(body)).await
    }

    /// Publish an API; panics unless the admin API answers 201.
    pub(crate) async fn publish(&self, spec: ApiSpec) -> PublishedApi {
        let reply = self
            .admin_call(Method::POST, &format!("{PUBLISHER}/apis"), &spec.0)
            .await;
        assert_eq!(reply.status, 201, "publish: {}", reply.text());
        PublishedApi {
            id: reply.json()["id"].as_str().expect("an id").to_owned(),
            route: spec.route(),
        }
    }

    /// Replace an API's whole definition (PUT); panics unless 200.
    pub(crate) async fn replace(&self, api: &PublishedApi, spec: ApiSpec) {
        let reply = self
            .admin_call(
                Method::PUT,
                &format!("{PUBLISHER}/apis/{}", api.id),
                &spec.0,
            )
            .await;
        assert_eq!(reply.status, 200, "replace: {}", reply.text());
    }

    /// An API's definition as the admin API returns it (secrets masked).
    pub(crate) async fn definition(&self, api: &PublishedApi) -> Value {
        let reply =
            Reply::from(self.admin(Method::GET, &format!("{PUBLISHER}/apis/{}", api.id))).await;
        assert_eq!(reply.status, 200, "get: {}", reply.text());
        reply.json()
    }

    /// Delete an API; panics unless 200.
    pub(crate) async fn delete(&self, api: &PublishedApi) {
        let reply =
            Reply::from(self.admin(Method::DELETE, &format!("{PUBLISHER}/apis/{}", api.id))).await;
        assert_eq!(reply.status, 200, "delete: {}", reply.text());
    }

    /// Create an application and return its id.
    pub(crate) async fn create_application(&self) -> String {
        let reply = self
            .admin_call(
                Method::POST,
                &format!("{DEVPORTAL}/applications"),
                &json!({"name": unique_name("app"), "throttlingPolicy": "Unlimited"}),
            )
            .await;
        assert_eq!(reply.status, 201, "application: {}", reply.text());
        reply.json()["applicationId"]
            .as_str()
            .expect("an applicationId")
            .to_owned()
    }

    /// Subscribe an application to an API.
    pub(crate) async fn subscribe(&self, application_id: &str, api: &PublishedApi) {
        let reply = self
            .admin_call(
                Method::POST,
                &format!("{DEVPORTAL}/subscriptions"),
                &json!({"apiId": api.id, "applicationId": application_id, "throttlingPolicy": "Unlimited"}),
            )
            .await;
        assert_eq!(reply.status, 201, "subscribe: {}", reply.text());
    }

    /// Generate an API key (`PRODUCTION` or `SANDBOX`) valid for
    /// `validity_seconds` (-1: never expires).
    pub(crate) async fn generate_key(
        &self,
        application_id: &str,
        key_type: &str,
        validity_seconds: i64,
    ) -> String {
        let reply = self
            .admin_call(
                Method::POST,
                &format!("{DEVPORTAL}/applications/{application_id}/api-keys/{key_type}/generate"),
                &json!({"validityPeriod": validity_seconds}),
            )
            .await;
        assert_eq!(reply.status, 200, "generate key: {}", reply.text());
        reply.json()["apikey"]
            .as_str()
            .expect("an apikey")
            .to_owned()
    }

    /// Revoke an API key; panics unless 200.
    pub(crate) async fn revoke_key(&self, application_id: &str, key_type: &str, key: &str) {
        let reply = self
            .admin_call(
                Method::POST,
                &format!("{DEVPORTAL}/applications/{application_id}/api-keys/{key_type}/revoke"),
                &json!({"apikey": key}),
            )
            .await;
        assert_eq!(reply.status, 200, "revoke: {}", reply.text());
    }

    /// A new application subscribed to `api`, with a production and a
    /// sandbox key that never expire.
    pub(crate) async fn subscribe_new_application(&self, api: &PublishedApi) -> Consumer {
        let application_id = self.create_application().await;
        self.subscribe(&application_id, api).await;
        let production_key = self.generate_key(&application_id, "PRODUCTION", -1).await;
        let sandbox_key = self.generate_key(&application_id, "SANDBOX", -1).await;
        Consumer {
            application_id,
            production_key,
            sandbox_key,
        }
    }

    /// `GET /readyz` (no credentials needed).
    pub(crate) async fn readiness(&self) -> Reply {
        Reply::from(self.http.get(format!("{}/readyz", url_of(self.admin_addr)))).await
    }

    /// Scrape `/metrics`.
    pub(crate) async fn metrics(&self) -> Metrics {
        let reply = Reply::from(self.admin(Method::GET, "/metrics")).await;
        assert_eq!(reply.status, 200, "metrics: {}", reply.text());
        Metrics(reply.text())
    }

    // ---- gateway ----

    /// A request to the gateway, to be completed by the caller.
    pub(crate) fn gateway(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", url_of(self.gateway_addr)))
    }

    /// `GET path` on the gateway, with the key in the `apikey` header if given.
    pub(crate) async fn get(&self, path: &str, key: Option<&str>) -> Reply {
        let mut request = self.gateway(Method::GET, path);
        if let Some(key) = key {
            request = request.header("apikey", key);
        }
        Reply::from(request).await
    }

    /// `POST path` on the gateway with a JSON body, the key as
    /// `Authorization: Bearer` (as OpenAI's SDKs send it) if given, and extra
    /// headers (the mock's `x-mock-*` switches, a client's own auth headers).
    pub(crate) async fn post_json(
        &self,
        path: &str,
        key: Option<&str>,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> Reply {
        Reply::from(self.ai_request(path, key, body, headers)).await
    }

    /// The request [`Sluice::post_json`] sends, for callers that read the
    /// answer themselves (streams).
    pub(crate) fn ai_request(
        &self,
        path: &str,
        key: Option<&str>,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> RequestBuilder {
        let mut request = self.gateway(Method::POST, path).json(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request
    }

    /// `count` sequential `GET`s; the statuses in order.
    pub(crate) async fn get_times(&self, count: usize, path: &str, key: Option<&str>) -> Vec<u16> {
        let mut statuses = Vec::with_capacity(count);
        for _ in 0..count {
            statuses.push(self.get(path, key).await.status);
        }
        statuses
    }
}

/// The HTTP client of the tests: no proxy, a generous timeout so that a hang
/// fails the test instead of blocking it.
pub(crate) fn http_client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("an HTTP client")
}

/// An API as the admin API created it.
#[derive(Debug, Clone)]
pub(crate) struct PublishedApi {
    pub(crate) id: String,
    /// `/{context}/{version}`.
    pub(crate) route: String,
}

impl PublishedApi {
    /// A path under the API: `route` + `rest`.
    pub(crate) fn path(&self, rest: &str) -> String {
        format!("{}{rest}", self.route)
    }
}

/// An application subscribed to an API, with its keys.
#[derive(Debug, Clone)]
pub(crate) struct Consumer {
    pub(crate) application_id: String,
    pub(crate) production_key: String,
    pub(crate) sandbox_key: String,
}

/// A WSO2 API DTO under construction. Version `v1`, secured by API key.
#[derive(Debug, Clone)]
pub(crate) struct ApiSpec(pub(crate) Value);

impl ApiSpec {
    /// An API at `/{context}/v1` without endpoints or limits.
    pub(crate) fn new(context: &str) -> Self {
        Self(json!({
            "name": format!("{context} API"),
            "context": format!("/{context}"),
            "version": "v1",
            "type": "HTTP",
            "endpointConfig": {"endpoint_type": "http"},
            "securityScheme": ["api_key"],
        }))
    }

    /// The route requests use: `/{context}/{version}`.
    pub(crate) fn route(&self) -> String {
        format!(
            "{}/{}",
            self.0["context"].as_str().expect("a context"),
            self.0["version"].as_str().expect("a version")
        )
    }

    /// The production endpoint URL.
    pub(crate) fn production(mut self, url: impl Into<String>) -> Self {
        self.0["endpointConfig"]["production_endpoints"] = json!({"url": url.into()});
        self
    }

    /// The sandbox endpoint URL.
    pub(crate) fn sandbox(mut self, url: impl Into<String>) -> Self {
        self.0["endpointConfig"]["sandbox_endpoints"] = json!({"url": url.into()});
        self
    }

    /// Production and sandbox endpoints on one backend.
    pub(crate) fn backend(self, backend: &MockBackend) -> Self {
        let url = url_of(backend.addr());
        self.production(url.clone()).sandbox(url)
    }

    /// `maxTps.production` and `productionTimeUnit`.
    pub(crate) fn production_limit(self, limit: u64, unit: &str) -> Self {
        self.max_tps("production", json!(limit))
            .max_tps("productionTimeUnit", json!(unit))
    }

    /// `maxTps.sandbox` and `sandboxTimeUnit`.
    pub(crate) fn sandbox_limit(self, limit: u64, unit: &str) -> Self {
        self.max_tps("sandbox", json!(limit))
            .max_tps("sandboxTimeUnit", json!(unit))
    }

    /// One of Sluice's options in `maxTps["x-sluice"]`.
    pub(crate) fn throughput_option(mut self, name: &str, value: Value) -> Self {
        if self.0["maxTps"]["x-sluice"].is_null() {
            self = self.max_tps("x-sluice", json!({}));
        }
        self.0["maxTps"]["x-sluice"][name] = value;
        self
    }

    /// `x-sluice.open: true`: callable without a key.
    pub(crate) fn open(self) -> Self {
        self.api_option("open", json!(true))
    }

    /// One of Sluice's options in the API's own `x-sluice` object.
    pub(crate) fn api_option(mut self, name: &str, value: Value) -> Self {
        if self.0["x-sluice"].is_null() {
            self.0["x-sluice"] = json!({});
        }
        self.0["x-sluice"][name] = value;
        self
    }

    /// An AI API whose backend speaks `provider` (WSO2's `llmProviderName`:
    /// `OpenAI`, `AzureOpenAI`, `MistralAI`, `Anthropic`, `OpenAICompatible`).
    pub(crate) fn ai(self, provider: &str) -> Self {
        self.with(
            "subtypeConfiguration",
            json!({"subtype": "AIAPI", "configuration": {"llmProviderName": provider}}),
        )
    }

    /// Token limits of one environment (`production` or `sandbox`) in
    /// `maxTps.tokenBasedThrottlingConfiguration`, switched on; `None`
    /// leaves a dimension unlimited. They count per the environment's time
    /// unit (`{environment}TimeUnit`), set here to `unit`.
    pub(crate) fn token_limits(
        mut self,
        environment: &str,
        unit: &str,
        [prompt, completion, total]: [Option<u64>; 3],
    ) -> Self {
        self = self.max_tps(&format!("{environment}TimeUnit"), json!(unit));
        if self.0["maxTps"]["tokenBasedThrottlingConfiguration"].is_null() {
            self = self.max_tps("tokenBasedThrottlingConfiguration", json!({}));
        }
        let config = &mut self.0["maxTps"]["tokenBasedThrottlingConfiguration"];
        config["isTokenBasedThrottlingEnabled"] = json!(true);
        for (suffix, cap) in [
            ("MaxPromptTokenCount", prompt),
            ("MaxCompletionTokenCount", completion),
            ("MaxTotalTokenCount", total),
        ] {
            if let Some(cap) = cap {
                config[format!("{environment}{suffix}")] = json!(cap);
            }
        }
        self
    }

    /// `isTokenBasedThrottlingEnabled`, once token limits are set.
    pub(crate) fn token_throttling_enabled(mut self, enabled: bool) -> Self {
        self.0["maxTps"]["tokenBasedThrottlingConfiguration"]["isTokenBasedThrottlingEnabled"] =
            json!(enabled);
        self
    }

    /// Endpoint credentials of one environment, WSO2's `apikey` type: the
    /// gateway sends `header: value` to the backend instead of the client's
    /// auth headers.
    pub(crate) fn endpoint_api_key(mut self, environment: &str, header: &str, value: &str) -> Self {
        self.0["endpointConfig"]["endpoint_security"][environment] = json!({
            "enabled": true, "type": "apikey",
            "apiKeyIdentifier": header, "apiKeyValue": value,
        });
        self
    }

    /// Set a top-level field of the DTO (`null` removes nothing, it sets null).
    pub(crate) fn with(mut self, field: &str, value: Value) -> Self {
        self.0[field] = value;
        self
    }

    /// Remove a top-level field of the DTO.
    pub(crate) fn without(mut self, field: &str) -> Self {
        if let Some(object) = self.0.as_object_mut() {
            object.remove(field);
        }
        self
    }

    fn max_tps(mut self, field: &str, value: Value) -> Self {
        if self.0["maxTps"].is_null() {
            self.0["maxTps"] = json!({});
        }
        self.0["maxTps"][field] = value;
        self
    }
}

/// An HTTP answer, read whole.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Reply {
    /// Send `request` and read the answer whole.
    pub(crate) async fn from(request: RequestBuilder) -> Self {
        let response = request.send().await.expect("the request gets an answer");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await.expect("a readable body").to_vec();
        Self {
            status,
            headers,
            body,
        }
    }

    /// The body as text.
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics if it is not.
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }

    /// A header as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The `fault.code` of a gateway fault body.
    pub(crate) fn fault_code(&self) -> u64 {
        let body = self.json();
        body["fault"]["code"]
            .as_u64()
            .unwrap_or_else(|| panic!("no fault code in {body}"))
    }

    /// The `data:` payloads of a server-sent event stream, as JSON (the
    /// closing `[DONE]` and non-JSON payloads left out).
    pub(crate) fn sse_data(&self) -> Vec<Value> {
        sse_data(&self.text())
    }

    /// What the mock backend saw of the forwarded request (its echo).
    pub(crate) fn echo(&self) -> Value {
        assert_eq!(self.status, 200, "not a backend answer: {}", self.text());
        self.json()
    }
}

/// Assert that `reply` is the backend-throughput refusal: 503, WSO2's body,
/// `Retry-After` of at least one second, `retry-after-ms`, and the IETF
/// `RateLimit-Policy` / `RateLimit` fields. Returns `Retry-After`.
pub(crate) fn assert_limit_reached(reply: &Reply) -> u64 {
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert_eq!(reply.json(), limit_reached_body());
    let retry_after: u64 = reply
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a numeric Retry-After");
    assert!(retry_after >= 1, "Retry-After {retry_after}");
    let retry_after_ms: u64 = reply
        .header("retry-after-ms")
        .and_then(|v| v.parse().ok())
        .expect("a numeric retry-after-ms");
    assert!(
        retry_after_ms.div_ceil(1_000).max(1) == retry_after,
        "retry-after-ms {retry_after_ms} and Retry-After {retry_after} disagree"
    );
    assert!(
        reply.header("ratelimit-policy").is_some(),
        "no RateLimit-Policy"
    );
    assert!(reply.header("ratelimit").is_some(), "no RateLimit");
    retry_after
}

/// How many of `statuses` equal `status`.
pub(crate) fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// A Prometheus text exposition.
#[derive(Debug)]
pub(crate) struct Metrics(pub(crate) String);

impl Metrics {
    /// The value of the one series of `name` carrying all of `labels`; 0 when
    /// there is none (a counter never incremented). Panics if several match.
    pub(crate) fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let matches: Vec<f64> = self
            .0
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| {
                let (series, value) = line.rsplit_once(' ')?;
                let (series_name, series_labels) = match series.split_once('{') {
                    Some((n, rest)) => (n, rest.trim_end_matches('}')),
                    None => (series, ""),
                };
                let wanted = series_name == name
                    && labels.iter().all(|(key, expected)| {
                        series_labels
                            .split("\",")
                            .filter_map(|pair| pair.split_once("=\""))
                            .any(|(k, v)| k == *key && v.trim_end_matches('"') == *expected)
                    });
                wanted.then(|| value.parse().expect("a numeric sample"))
            })
            .collect();
        assert!(
            matches.len() <= 1,
            "{name}{labels:?} matches several series"
        );
        matches.first().copied().unwrap_or(0.0)
    }

    /// `sluice_backend_tokens_total` of one (API, environment, dimension)
    /// from one source (`reported` or `estimated`).
    pub(crate) fn tokens(
        &self,
        api: &PublishedApi,
        environment: &str,
        dimension: &str,
        source: &str,
    ) -> f64 {
        self.value(
            sluice_gateway::telemetry::names::TOKENS,
            &[
                ("api_id", api.id.as_str()),
                ("environment", environment),
                ("dimension", dimension),
                ("source", source),
            ],
        )
    }

    /// A series of one (API, environment), optionally of one dimension.
    pub(crate) fn of(
        &self,
        name: &str,
        api: &PublishedApi,
        environment: &str,
        dimension: Option<&str>,
    ) -> f64 {
        let mut labels = vec![("api_id", api.id.as_str()), ("environment", environment)];
        if let Some(dimension) = dimension {
            labels.push(("dimension", dimension));
        }
        self.value(name, &labels)
    }
}

/// The `data:` payloads of a server-sent event stream, as JSON.
pub(crate) fn sse_data(stream: &str) -> Vec<Value> {
    stream
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect()
}

/// Token usage as a provider reports it, in Sluice's three dimensions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Usage {
    pub(crate) prompt: u64,
    pub(crate) completion: u64,
    pub(crate) total: u64,
}

impl Usage {
    /// The usage block of an OpenAI chat completion (`prompt_tokens`,
    /// `completion_tokens`, `total_tokens`), a Responses object
    /// (`input_tokens`, `output_tokens`, `total_tokens`) or an Anthropic
    /// message (`input_tokens` plus cache tokens, `output_tokens`); `None`
    /// when `value` has no `usage` object.
    pub(crate) fn reported_in(value: &Value) -> Option<Self> {
        let usage = value.get("usage").filter(|u| u.is_object())?;
        let field = |name: &str| usage[name].as_u64().unwrap_or(0);
        let (prompt, completion) = if usage.get("prompt_tokens").is_some() {
            (field("prompt_tokens"), field("completion_tokens"))
        } else {
            (
                field("input_tokens")
                    + field("cache_creation_input_tokens")
                    + field("cache_read_input_tokens"),
                field("output_tokens"),
            )
        };
        Some(Self {
            prompt,
            completion,
            total: usage["total_tokens"]
                .as_u64()
                .unwrap_or(prompt + completion),
        })
    }

    /// Component-wise sum.
    pub(crate) fn plus(self, other: Self) -> Self {
        Self {
            prompt: self.prompt + other.prompt,
            completion: self.completion + other.completion,
            total: self.total + other.total,
        }
    }
}

/// A parsed `X-Sluice-Admission` stamp: `window=<index>; unit=<UNIT>; environment=<env>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct AdmissionStamp {
    pub(crate) environment: String,
    pub(crate) unit: String,
    pub(crate) window: u64,
}

impl AdmissionStamp {
    /// Parse a stamp; panics on a malformed one.
    pub(crate) fn parse(stamp: &str) -> Self {
        let field = |name: &str| {
            stamp
                .split(';')
                .filter_map(|part| part.trim().split_once('='))
                .find(|(key, _)| *key == name)
                .map(|(_, value)| value.to_owned())
                .unwrap_or_else(|| panic!("no {name} in stamp {stamp:?}"))
        };
        Self {
            environment: field("environment"),
            unit: field("unit"),
            window: field("window").parse().expect("a numeric window"),
        }
    }
}

/// Requests the backend received, per admission stamp, parsed.
pub(crate) fn received_by_window(backend: &MockBackend) -> Vec<(AdmissionStamp, u64)> {
    backend
        .stats()
        .by_admission()
        .iter()
        .map(|(stamp, count)| (AdmissionStamp::parse(stamp), *count))
        .collect()
}

/// Scrape `/metrics` every 10 ms until `condition` holds of them (for what
/// the gateway does after a client has gone, such as settling a dropped
/// stream); the metrics that satisfied it. Panics after 10 s.
pub(crate) async fn wait_for_metrics(
    sluice: &Sluice,
    what: &str,
    mut condition: impl FnMut(&Metrics) -> bool,
) -> Metrics {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = sluice.metrics().await;
        if condition(&metrics) {
            return metrics;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Poll an asynchronous `condition` (a request, say) every 25 ms until it
/// holds; panics when it still does not after `within`. Returns how long it
/// took, for events that must happen within a bound.
pub(crate) async fn eventually(
    what: &str,
    within: Duration,
    mut condition: impl AsyncFnMut() -> bool,
) -> Duration {
    let started = tokio::time::Instant::now();
    while !condition().await {
        assert!(started.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    started.elapsed()
}

/// Poll `condition` every 10 ms until it holds (for events in real time,
/// such as a request reaching the backend); panics after 10 s.
pub(crate) async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
