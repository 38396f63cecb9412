//! TLS (issue 7, item 3) on real sockets, with certificates made for each
//! test by a throw-away CA: the gateway and admin listeners serve HTTPS with
//! the configured certificate; upstream HTTPS endpoints are verified against
//! the system roots or the configured CA, and an endpoint's explicit opt-out
//! works and is logged.

use crate::common;

use bytes::Bytes;
use common::{ADMIN_PASSWORD, ApiSpec, Sluice, start_mock};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::CertificateDer;
use serde_json::Value;
use sluice::config::{Config, UpstreamTrust};
use sluice_gateway::telemetry::names::{FORWARDED, REFUNDED};
use sluice_gateway::tls::server_config;
use sluice_limits::SystemClock;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

/// A CA and one certificate it signed for `127.0.0.1` and `localhost`, as
/// PEM files.
struct Pki {
    ca: CertificateDer<'static>,
    cert_file: PathBuf,
    key_file: PathBuf,
    ca_file: PathBuf,
    _dir: TempDir,
}

fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let dir = TempDir::new().unwrap();
    let write = |name: &str, pem: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    Pki {
        ca: ca.der().clone(),
        cert_file: write("cert.pem", leaf.pem()),
        key_file: write("key.pem", key.serialize_pem()),
        ca_file: write("ca.pem", ca.pem()),
        _dir: dir,
    }
}

impl Pki {
    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        server_config(&self.cert_file, &self.key_file).expect("usable certificate and key")
    }
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTPS client that trusts only `ca`.
fn https_client(ca: &CertificateDer<'static>) -> HttpsClient {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    Client::builder(TokioExecutor::new()).build(connector)
}

/// Send `request`; status, headers and body.
async fn send(client: &HttpsClient, request: Request<Full<Bytes>>) -> Response<Bytes> {
    let response = tokio::time::timeout(Duration::from_secs(10), client.request(request))
        .await
        .expect("an answer in time")
        .expect("an answer");
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, body.collect().await.unwrap().to_bytes())
}

fn get(url: String) -> Request<Full<Bytes>> {
    Request::get(url).body(Full::default()).unwrap()
}

/// An HTTPS backend answering `secure` to everything.
async fn https_backend(config: Arc<rustls::ServerConfig>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(config);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(stream) = acceptor.accept(stream).await else {
                    return;
                };
                let service = hyper::service::service_fn(|_request| async {
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"secure"))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Warnings logged by this test process.
fn warnings() -> &'static Mutex<String> {
    static LOGS: OnceLock<Mutex<String>> = OnceLock::new();
    LOGS.get_or_init(|| {
        struct Capture;
        impl std::io::Write for Capture {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                warnings()
                    .lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(bytes));
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(|| Capture)
            .try_init();
        Mutex::new(String::new())
    })
}

async fn sluice_with(configure: impl FnOnce(&mut Config)) -> Sluice {
    Sluice::start_configured(Arc::new(SystemClock::new()), configure).await
}

#[tokio::test]
async fn the_gateway_serves_https_and_forwards_the_request_as_https() {
    let pki = pki();
    let backend = start_mock().await;
    let sluice = sluice_with(|config| config.accept.tls = Some(pki.server_config())).await;
    sluice
        .publish(ApiSpec::new("secure").backend(&backend).open())
        .await;
    let client = https_client(&pki.ca);

    let response = send(
        &client,
        get(format!(
            "https://127.0.0.1:{}/secure/v1/x",
            sluice.gateway_addr.port()
        )),
    )
    .await;

    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.version(),
        http::Version::HTTP_2,
        "ALPN offers HTTP/2"
    );
    let echo: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(echo["headers"]["x-forwarded-proto"], "https", "{echo}");
}

#[tokio::test]
async fn plain_http_on_the_tls_listener_gets_no_answer() {
    let pki = pki();
    let sluice = sluice_with(|config| config.accept.tls = Some(pki.server_config())).await;

    let reply = common::http_client()
        .get(format!("http://{}/x/v1", sluice.gateway_addr))
        .send()
        .await;

    assert!(reply.is_err(), "{reply:?}");
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_cut_at_the_header_read_timeout() {
    let pki = pki();
    let timeout = Duration::from_millis(300);
    let sluice = sluice_with(|config| {
        config.accept.tls = Some(pki.server_config());
        config.accept.header_read_timeout = timeout;
    })
    .await;
    let mut stream = TcpStream::connect(sluice.gateway_addr).await.unwrap();
    let started = Instant::now();

    let mut byte = [0u8; 1];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut byte)).await;

    assert!(matches!(read, Ok(Ok(0) | Err(_))), "{read:?}");
    let waited = started.elapsed();
    assert!(
        waited >= timeout && waited < timeout * 10,
        "closed after {waited:?}"
    );
}

#[tokio::test]
async fn the_admin_listener_serves_https_and_its_session_cookie_is_secure() {
    let pki = pki();
    let sluice = sluice_with(|config| config.admin.tls = Some(pki.server_config())).await;
    let client = https_client(&pki.ca);
    let origin = format!("https://127.0.0.1:{}", sluice.admin_addr.port());

    let health = send(&client, get(format!("{origin}/healthz"))).await;
    let login = send(
        &client,
        Request::post(format!("{origin}/publisher/session"))
            .header("origin", &origin)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(format!(
                "username=admin&password={ADMIN_PASSWORD}&next=/publisher/apis"
            ))))
            .unwrap(),
    )
    .await;

    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(login.status(), StatusCode::SEE_OTHER);
    let cookie = login.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
}

#[tokio::test]
async fn an_https_endpoint_signed_by_the_configured_ca_is_verified_and_used() {
    let pki = pki();
    let backend = https_backend(pki.server_config()).await;
    let ca_file = pki.ca_file.clone();
    let sluice = sluice_with(|config| {
        config.upstream_trust =
            UpstreamTrust::Certificates(sluice_gateway::tls::read_certificates(&ca_file).unwrap());
    })
    .await;
    let api = sluice
        .publish(
            ApiSpec::new("verified")
                .production(format!("https://127.0.0.1:{}", backend.port()))
                .open(),
        )
        .await;

    let reply = sluice.get(&api.path("/x"), None).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "secure");
}

#[tokio::test]
async fn an_https_endpoint_that_fails_verification_gets_502_and_its_admission_is_refunded() {
    let pki = pki();
    let backend = https_backend(pki.server_config()).await;
    // The system roots do not know the test CA.
    let sluice = sluice_with(|_| {}).await;
    let api = sluice
        .publish(
            ApiSpec::new("unverifiable")
                .production(format!("https://127.0.0.1:{}", backend.port()))
                .production_limit(100, "MINUTE")
                .open(),
        )
        .await;

    let reply = sluice.get(&api.path("/x"), None).await;

    assert_eq!(reply.status, 502, "{}", reply.text());
    assert_eq!(reply.fault_code(), 101503);
    let metrics = sluice.metrics().await;
    assert_eq!(metrics.of(REFUNDED, &api, "production", None), 1.0);
    assert_eq!(metrics.of(FORWARDED, &api, "production", None), 0.0);
}

#[tokio::test]
async fn an_endpoint_that_opts_out_of_verification_is_used_and_the_opt_out_is_logged() {
    let logs = warnings();
    let pki = pki();
    let backend = https_backend(pki.server_config()).await;
    let sluice = sluice_with(|_| {}).await;
    let mut spec = ApiSpec::new("insecure")
        .production(format!("https://127.0.0.1:{}", backend.port()))
        .sandbox(format!("https://127.0.0.1:{}", backend.port()))
        .open();
    spec.0["endpointConfig"]["production_endpoints"]["x-sluice"] =
        serde_json::json!({"tlsVerify": false});
    let api = sluice.publish(spec).await;

    let reply = sluice.get(&api.path("/x"), None).await;

    assert_eq!(reply.status, 200, "{}", reply.text());
    let logged = logs.lock().unwrap().clone();
    assert!(
        logged.contains("TLS verification is turned off for this endpoint")
            && logged.contains("environment=\"production\""),
        "no warning when the opt-out was saved:\n{logged}"
    );
    assert!(
        logged.contains("accepting a certificate that failed verification"),
        "no warning when the unverified certificate was accepted:\n{logged}"
    );
    assert!(
        !logged.contains("environment=\"sandbox\""),
        "the sandbox endpoint did not opt out:\n{logged}"
    );
}
