//! Logging: text or JSON lines on stdout, filtered by level. Access log lines
//! use the target `sluice::access`.

use crate::config::LogFormat;
use tracing_subscriber::EnvFilter;

/// Install the global subscriber. `RUST_LOG` overrides the configured level.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (tests starting several servers) keeps the first.
    let _ = result;
}
