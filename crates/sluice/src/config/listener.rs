//! The listener keys of the configuration (issue 7): the gateway's accept
//! phase (client timeouts, request head and connection limits), TLS of both
//! listeners, and the CA upstream HTTPS endpoints are verified against.
//!
//! Certificate and key files are read here, at validation, so `check-config`
//! and the start both report an unusable one by its key.

use super::{RawAdmin, RawGateway};
use anyhow::{anyhow, bail};
use sluice_admin::AdminListener;
use sluice_gateway::AcceptSettings;
use sluice_gateway::tls::{UpstreamTrust, read_certificates, server_config};
use std::path::Path;
use std::sync::Arc;

/// `[gateway]`'s accept-phase keys, validated.
pub(super) fn accept_settings(raw: &RawGateway) -> anyhow::Result<AcceptSettings> {
    for (key, value) in [
        ("gateway.max_connections", raw.max_connections),
        ("gateway.max_headers", raw.max_headers),
        ("gateway.max_header_bytes", raw.max_header_bytes),
        ("gateway.max_uri_bytes", raw.max_uri_bytes),
    ] {
        if value == 0 {
            bail!("{key}: must be more than 0");
        }
    }
    if raw.max_header_bytes > 1024 * 1024 || raw.max_uri_bytes > 1024 * 1024 {
        bail!("gateway.max_header_bytes, gateway.max_uri_bytes: at most 1 MiB each");
    }
    Ok(AcceptSettings {
        header_read_timeout: raw.header_read_timeout,
        body_read_timeout: raw.body_read_timeout,
        idle_timeout: raw.idle_timeout,
        max_connections: raw.max_connections,
        max_headers: raw.max_headers,
        max_header_bytes: raw.max_header_bytes,
        max_uri_bytes: raw.max_uri_bytes,
        tls: tls("gateway", raw.tls_cert.as_deref(), raw.tls_key.as_deref())?,
    })
}

/// `[admin]`: the admin listener's TLS and bounds.
pub(super) fn admin_listener(raw: &RawAdmin) -> anyhow::Result<AdminListener> {
    if raw.max_connections == 0 {
        bail!("admin.max_connections: must be more than 0");
    }
    Ok(AdminListener {
        tls: tls("admin", raw.tls_cert.as_deref(), raw.tls_key.as_deref())?,
        header_read_timeout: raw.header_read_timeout,
        body_read_timeout: raw.body_read_timeout,
        max_connections: raw.max_connections,
    })
}

/// A listener's TLS from `[section] tls_cert` and `tls_key`: both or neither.
pub(super) fn tls(
    section: &str,
    cert: Option<&Path>,
    key: Option<&Path>,
) -> anyhow::Result<Option<Arc<rustls::ServerConfig>>> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(_), None) => bail!("{section}.tls_key: required when {section}.tls_cert is set"),
        (None, Some(_)) => bail!("{section}.tls_cert: required when {section}.tls_key is set"),
        (Some(cert), Some(key)) => server_config(cert, key)
            .map(Some)
            .map_err(|e| anyhow!("{section}.tls_cert, {section}.tls_key: {e}")),
    }
}

/// `[gateway] upstream_ca_file`: the CAs HTTPS endpoints are verified
/// against, or the system roots.
pub(super) fn upstream_trust(ca_file: Option<&Path>) -> anyhow::Result<UpstreamTrust> {
    match ca_file {
        None => Ok(UpstreamTrust::SystemRoots),
        Some(path) => read_certificates(path)
            .map(UpstreamTrust::Certificates)
            .map_err(|e| anyhow!("gateway.upstream_ca_file: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::time::Duration;

    #[test]
    fn the_accept_phase_has_safe_defaults() {
        let accept = Config::parse("").unwrap().accept;
        assert_eq!(accept.header_read_timeout, Duration::from_secs(10));
        assert_eq!(accept.body_read_timeout, Duration::from_secs(30));
        assert_eq!(accept.idle_timeout, Duration::from_secs(60));
        assert_eq!(accept.max_connections, 10_000);
        assert_eq!(accept.max_headers, 100);
        assert_eq!(accept.max_header_bytes, 32 * 1024);
        assert_eq!(accept.max_uri_bytes, 16 * 1024);
        assert!(accept.tls.is_none());
    }

    #[test]
    fn reads_the_accept_phase_keys() {
        let config = Config::parse(
            r#"
            [gateway]
            header_read_timeout = "2s"
            body_read_timeout = "3s"
            idle_timeout = "4s"
            max_connections = 50
            max_headers = 20
            max_header_bytes = 4096
            max_uri_bytes = 1024
            "#,
        )
        .unwrap();
        let accept = config.accept;
        assert_eq!(accept.header_read_timeout, Duration::from_secs(2));
        assert_eq!(accept.body_read_timeout, Duration::from_secs(3));
        assert_eq!(accept.idle_timeout, Duration::from_secs(4));
        assert_eq!(
            (
                accept.max_connections,
                accept.max_headers,
                accept.max_header_bytes,
                accept.max_uri_bytes
            ),
            (50, 20, 4096, 1024)
        );
    }

    #[test]
    fn zero_limits_and_timeouts_are_refused_by_key() {
        for key in [
            "max_connections = 0",
            "max_headers = 0",
            "max_header_bytes = 0",
            "max_uri_bytes = 0",
            "body_read_timeout = \"0s\"",
            "idle_timeout = \"0s\"",
        ] {
            let error = Config::parse(&format!("[gateway]\n{key}\n")).unwrap_err();
            let name = key.split(' ').next().unwrap();
            assert!(
                error.to_string().contains(&format!("gateway.{name}")),
                "{key}: {error}"
            );
        }
    }

    #[test]
    fn a_certificate_without_its_key_is_refused_by_key() {
        let error = Config::parse("[gateway]\ntls_cert = \"cert.pem\"\n").unwrap_err();
        assert!(error.to_string().contains("gateway.tls_key"), "{error}");
        let error = Config::parse("[admin]\ntls_key = \"key.pem\"\n").unwrap_err();
        assert!(error.to_string().contains("admin.tls_cert"), "{error}");
    }

    #[test]
    fn unreadable_tls_files_are_refused_naming_the_keys() {
        let error = Config::parse(
            "[admin]\ntls_cert = \"/nonexistent/cert.pem\"\ntls_key = \"/nonexistent/key.pem\"\n",
        )
        .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("admin.tls_cert"), "{message}");
        assert!(message.contains("/nonexistent/cert.pem"), "{message}");
        let error =
            Config::parse("[gateway]\nupstream_ca_file = \"/nonexistent/ca.pem\"\n").unwrap_err();
        assert!(
            error.to_string().contains("gateway.upstream_ca_file"),
            "{error}"
        );
    }
}
