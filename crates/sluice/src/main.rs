//! The `sluice` command: `serve` runs the gateway and admin listeners,
//! `mock-backend` a fast fake backend, `check-config` validates a config file.

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice::app::{StartOptions, start};
use sluice::config::Config;
use sluice::mock_backend::{MockBackend, MockOptions};
use std::net::SocketAddr;
use std::path::PathBuf;

/// jemalloc rather than the system allocator: under load a proxied request
/// allocates and frees a few dozen blocks across threads, which glibc's
/// malloc serves at about 7% of the gateway's CPU time and jemalloc at half
/// of that; idle memory is returned to the system after its decay time.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Sluice: an API gateway that protects backends with a Maximum Backend Throughput.
#[derive(Parser)]
#[command(name = "sluice", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway and the admin listener.
    Serve {
        /// TOML configuration file; embedded defaults without one.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Run a fast fake backend that echoes requests as JSON.
    MockBackend {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:9000")]
        listen: SocketAddr,
        /// Delay before each answer, in milliseconds.
        #[arg(long, default_value_t = 0)]
        latency_ms: u64,
        /// Multiply the reported prompt tokens (an unfriendly tokenizer above 1).
        #[arg(long, default_value_t = 1.0)]
        prompt_factor: f64,
        /// Completion tokens: `max` (the request's cap) or `random` (1 to the cap).
        #[arg(long, default_value = "max", value_parser = ["max", "random"])]
        completion: String,
        /// Compress every AI answer with gzip, whatever the client asked.
        #[arg(long)]
        gzip: bool,
    },
    /// Validate a configuration file and exit.
    CheckConfig {
        /// The file to check.
        config: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::CheckConfig { config } => {
            Config::load(&config)?;
            println!("{}: ok", config.display());
            Ok(())
        }
        Command::Serve { config } => {
            let config = match config {
                Some(path) => Config::load(&path)?,
                None => Config::defaults(),
            };
            sluice::logging::init(config.log_format, &config.log_level);
            runtime()?.block_on(serve(config))
        }
        Command::MockBackend {
            listen,
            latency_ms,
            prompt_factor,
            completion,
            gzip,
        } => {
            sluice::logging::init(sluice::config::LogFormat::Text, "info");
            runtime()?.block_on(async move {
                let stop = shutdown_signal()?;
                let mock = MockBackend::start(
                    listen,
                    MockOptions {
                        latency: std::time::Duration::from_millis(latency_ms),
                        ai: sluice::mock_ai::AiMockOptions {
                            prompt_factor,
                            random_completion: completion == "random",
                            gzip,
                        },
                    },
                )
                .await?;
                tracing::info!(addr = %mock.addr(), "mock backend listening");
                stop.await;
                Ok(())
            })
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let options = StartOptions {
        admin_password: std::env::var("SLUICE_ADMIN_PASSWORD").ok(),
        key_pepper: std::env::var("SLUICE_KEY_PEPPER").ok(),
        secrets_key: std::env::var("SLUICE_SECRETS_KEY").ok(),
        ..StartOptions::default()
    };
    let stop = shutdown_signal()?;
    let running = start(&config, options).await?;
    if let Some(path) = &running.initial_password_file {
        println!(
            "The first admin password for user 'admin' was written to {}",
            path.display()
        );
    }
    let scheme = |tls: bool| if tls { "https" } else { "http" };
    println!(
        "Sluice gateway on {}://{}, admin API on {}://{}",
        scheme(config.accept.tls.is_some()),
        running.gateway_addr,
        scheme(config.admin.tls.is_some()),
        running.admin_addr
    );
    stop.await;
    tracing::info!("shutting down: draining in-flight requests");
    running.shutdown().await
}

/// Registers the SIGTERM and SIGINT handlers at once, so a signal that arrives
/// while Sluice is still starting is not lost (nor kills the process), and
/// returns the future that completes on the first of them.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
    })
}
