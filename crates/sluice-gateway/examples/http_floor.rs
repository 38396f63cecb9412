//! The floor of Sluice's HTTP stack: what hyper and tokio cost with none of
//! Sluice in between, for `bench/compare.sh` to set beside Sluice, NGINX and
//! HAProxy.
//!
//! It serves HTTP/1.1 on `--listen` the way the gateway's listener does:
//! hyper-util's `auto` server, keep-alive, one current-thread runtime per
//! worker. Two things differ: connections are spread by `SO_REUSEPORT`
//! rather than handed over (a cost per connection, not per request), and
//! hyper's vectored writes go out as they are, where the gateway sends a
//! small one as one plain write (`server/gather.rs`).
//!
//! It either answers every request with a copy of Sluice's throttled answer
//! (`--answer`: the same status, header fields and body, 470 bytes; its
//! request id fixed rather than drawn for each answer), or passes every
//! request to `--backend` through hyper-util's pooled client, one pool per
//! worker, and streams the answer back: no routing, key, limit, header
//! rewrite, metric or log.
//!
//! `cargo run --release -p sluice-gateway --example http_floor -- --listen 127.0.0.1:8080 --answer`
//! `cargo run --release -p sluice-gateway --example http_floor -- --listen 127.0.0.1:8080 --backend 127.0.0.1:9000`

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

/// The body of Sluice's throttled answer.
const THROTTLED: &str = r#"{"fault":{"code":900801,"message":"API Limit Reached","description":"API not accepting requests"}}"#;

/// The header fields of Sluice's throttled answer under a cap of 1000 per
/// second (hyper adds `content-length` and `date`, as for Sluice's).
const THROTTLED_FIELDS: [(&str, &str); 8] = [
    ("content-type", "application/json; charset=UTF-8"),
    ("x-should-retry", "true"),
    ("x-sluice-limit-dimension", "requests"),
    ("retry-after", "1"),
    ("retry-after-ms", "1"),
    ("ratelimit-policy", "\"backend-requests\";q=1000;w=1"),
    ("ratelimit", "\"backend-requests\";r=0;t=1"),
    ("x-request-id", "97e526fc-f11e-4b88-a673-adcdc27398fd"),
];

type Body = Either<Incoming, Full<Bytes>>;

/// The floor of Sluice's HTTP stack, for `bench/compare.sh`.
#[derive(clap::Parser)]
#[command(group(clap::ArgGroup::new("mode").required(true).args(["answer", "backend"])))]
struct Options {
    /// Address to serve on.
    #[arg(long)]
    listen: SocketAddr,
    /// Answer every request with a copy of Sluice's throttled answer.
    #[arg(long)]
    answer: bool,
    /// Pass every request on to this `HOST:PORT`.
    #[arg(long)]
    backend: Option<String>,
    /// Worker threads (default: one per core).
    #[arg(long, default_value_t = std::thread::available_parallelism().map_or(1, usize::from))]
    workers: usize,
}

fn main() -> std::io::Result<()> {
    let options = <Options as clap::Parser>::parse();
    let threads: Vec<_> = (0..options.workers)
        .map(|_| {
            let backend = options.backend.clone();
            std::thread::spawn(move || worker(options.listen, backend))
        })
        .collect();
    for thread in threads {
        thread.join().expect("a worker panicked")?;
    }
    Ok(())
}

/// One worker: its own listener on the shared port (`SO_REUSEPORT`), its own
/// runtime and its own upstream pool.
fn worker(listen: SocketAddr, backend: Option<String>) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let socket = tokio::net::TcpSocket::new_v4()?;
        socket.set_reuseport(true)?;
        socket.set_reuseaddr(true)?;
        socket.bind(listen)?;
        let listener = socket.listen(1024)?;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder.http1().timer(TokioTimer::new()).keep_alive(true);
        let builder = Arc::new(builder);
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client: Client<HttpConnector, Incoming> = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(1024)
            .pool_timer(TokioTimer::new())
            .build(connector);
        let backend: Option<Arc<str>> = backend.map(Arc::from);
        loop {
            let (stream, _) = listener.accept().await?;
            stream.set_nodelay(true)?;
            let builder = Arc::clone(&builder);
            let client = client.clone();
            let backend = backend.clone();
            let service = service_fn(move |request: Request<Incoming>| {
                let client = client.clone();
                let backend = backend.clone();
                async move { Ok::<_, Infallible>(answer(request, &client, backend.as_deref()).await) }
            });
            tokio::spawn(async move {
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    })
}

async fn answer(
    request: Request<Incoming>,
    client: &Client<HttpConnector, Incoming>,
    backend: Option<&str>,
) -> Response<Body> {
    let Some(backend) = backend else {
        let mut response = Response::new(Either::Right(Full::new(Bytes::from_static(
            THROTTLED.as_bytes(),
        ))));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        let headers = response.headers_mut();
        for (name, value) in THROTTLED_FIELDS {
            headers.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        return response;
    };
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    parts.uri = match Uri::try_from(format!("http://{backend}{path}")) {
        Ok(uri) => uri,
        Err(_) => return bad_gateway(),
    };
    match client.request(Request::from_parts(parts, body)).await {
        Ok(response) => response.map(Either::Left),
        Err(_) => bad_gateway(),
    }
}

fn bad_gateway() -> Response<Body> {
    let mut response = Response::new(Either::Right(Full::new(Bytes::new())));
    *response.status_mut() = StatusCode::BAD_GATEWAY;
    response
}
