//! The TLS keys of `[counters.redis]` (issue 4): `ca_file`, the CAs a
//! `rediss://` server is verified against instead of the system roots, and
//! `client_cert` with `client_key` for a server that requires a client
//! certificate.
//!
//! The files are read and parsed here, at validation, the way the Redis
//! client will parse them, so `check-config` and the start both report an
//! unusable one by its key instead of a node that never connects.

use anyhow::{Context, anyhow, bail};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use sluice_limits::redis::{ClientIdentity, RedisTls};
use std::path::Path;

/// The configured TLS files of `[counters.redis]`.
pub(super) struct TlsFiles<'a> {
    pub(super) ca_file: Option<&'a Path>,
    pub(super) client_cert: Option<&'a Path>,
    pub(super) client_key: Option<&'a Path>,
}

impl TlsFiles<'_> {
    /// The PEM material of the files, checked; `None` when no file is set.
    /// `tls_urls` says whether the URLs are `rediss://`: the files mean
    /// nothing to a plain connection, so they are refused with one.
    pub(super) fn read(&self, tls_urls: bool) -> anyhow::Result<Option<RedisTls>> {
        let set: Vec<&str> = [
            ("counters.redis.ca_file", self.ca_file),
            ("counters.redis.client_cert", self.client_cert),
            ("counters.redis.client_key", self.client_key),
        ]
        .into_iter()
        .filter_map(|(key, path)| path.map(|_| key))
        .collect();
        if set.is_empty() {
            return Ok(None);
        }
        if !tls_urls {
            bail!("{}: only with rediss:// URLs", set.join(", "));
        }
        let ca_pem = self.ca_file.map(read_ca_file).transpose()?;
        let client = match (self.client_cert, self.client_key) {
            (None, None) => None,
            (Some(_), None) => {
                bail!("counters.redis.client_key: required when counters.redis.client_cert is set")
            }
            (None, Some(_)) => {
                bail!("counters.redis.client_cert: required when counters.redis.client_key is set")
            }
            (Some(cert), Some(key)) => Some(read_client_identity(cert, key)?),
        };
        Ok(Some(RedisTls { ca_pem, client }))
    }
}

fn read(key: &str, path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{key}: cannot read {}", path.display()))
}

/// Every certificate of a PEM file; an error naming `key` when there is
/// none or one does not parse.
fn certificates(
    key: &str,
    path: &Path,
    pem: &[u8],
) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("{key}: {}: invalid PEM ({e})", path.display()))?;
    if certificates.is_empty() {
        bail!("{key}: {}: no certificate in the file", path.display());
    }
    Ok(certificates)
}

fn read_ca_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    const KEY: &str = "counters.redis.ca_file";
    let pem = read(KEY, path)?;
    let mut roots = RootCertStore::empty();
    for certificate in certificates(KEY, path, &pem)? {
        roots.add(certificate).map_err(|e| {
            anyhow!(
                "{KEY}: {}: not a usable CA certificate ({e})",
                path.display()
            )
        })?;
    }
    Ok(pem)
}

fn read_client_identity(cert_path: &Path, key_path: &Path) -> anyhow::Result<ClientIdentity> {
    let cert_pem = read("counters.redis.client_cert", cert_path)?;
    let chain = certificates("counters.redis.client_cert", cert_path, &cert_pem)?;
    let key_pem = read("counters.redis.client_key", key_path)?;
    // The parse error says nothing of the key's bytes; it is safe to print.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        anyhow!(
            "counters.redis.client_key: {}: no usable private key ({e})",
            key_path.display()
        )
    })?;
    CertifiedKey::from_der(chain, key, &rustls::crypto::ring::default_provider()).map_err(|e| {
        anyhow!(
            "counters.redis.client_cert, counters.redis.client_key: cannot be used together ({e})"
        )
    })?;
    Ok(ClientIdentity { cert_pem, key_pem })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use sluice_testkit::redis::TestCa;
    use std::path::{Path, PathBuf};
    use tempfile::TempDir;

    /// A CA, a client certificate it signed and the client's key, as files.
    struct Files {
        _dir: TempDir,
        ca: PathBuf,
        client_cert: PathBuf,
        client_key: PathBuf,
        client_key_pem: String,
    }

    fn files() -> Files {
        let dir = TempDir::new().unwrap();
        let ca = TestCa::new();
        let (cert_pem, key_pem) = ca.issue(&["sluice-node"]);
        let write = |name: &str, pem: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        Files {
            ca: write("ca.pem", &ca.cert_pem()),
            client_cert: write("client.pem", &cert_pem),
            client_key: write("client-key.pem", &key_pem),
            client_key_pem: key_pem,
            _dir: dir,
        }
    }

    fn redis(keys: &str) -> anyhow::Result<Config> {
        Config::parse(&format!(
            "[counters]\nbackend = \"redis\"\n[counters.redis]\n{keys}\n"
        ))
    }

    fn path(path: &Path) -> String {
        format!("{:?}", path.display().to_string())
    }

    #[test]
    fn rediss_without_files_verifies_against_the_system_roots() {
        let single = redis("url = \"rediss://sluice:hunter2@redis.internal:6380\"").unwrap();
        let cluster = redis("urls = [\"rediss://a:7000\", \"rediss://b:7001\"]").unwrap();

        let single = single.redis.unwrap();
        assert_eq!(single.urls, ["rediss://sluice:hunter2@redis.internal:6380"]);
        assert!(single.tls.is_none());
        let cluster = cluster.redis.unwrap();
        assert!(cluster.cluster);
        assert!(cluster.tls.is_none());
    }

    #[test]
    fn reads_the_ca_and_the_client_certificate_and_never_prints_the_key() {
        let files = files();

        let config = redis(&format!(
            "url = \"rediss://127.0.0.1:6380\"\nca_file = {}\nclient_cert = {}\nclient_key = {}",
            path(&files.ca),
            path(&files.client_cert),
            path(&files.client_key),
        ))
        .unwrap();

        let printed = format!("{config:?}");
        let tls = config.redis.unwrap().tls.unwrap();
        assert_eq!(tls.ca_pem.unwrap(), std::fs::read(&files.ca).unwrap());
        let client = tls.client.unwrap();
        assert_eq!(client.cert_pem, std::fs::read(&files.client_cert).unwrap());
        assert_eq!(client.key_pem, files.client_key_pem.as_bytes());
        let key_body = files.client_key_pem.lines().nth(1).unwrap();
        assert!(!printed.contains(key_body), "{printed}");
    }

    #[test]
    fn a_cluster_of_rediss_seed_nodes_takes_a_ca_file() {
        let files = files();

        let config = redis(&format!(
            "urls = [\"rediss://a:7000\", \"rediss://b:7001\"]\nca_file = {}",
            path(&files.ca)
        ))
        .unwrap();

        let redis = config.redis.unwrap();
        assert!(redis.cluster);
        assert!(redis.tls.unwrap().client.is_none());
    }

    #[test]
    fn tls_files_with_plain_redis_urls_are_refused_naming_the_key() {
        let files = files();

        let ca = redis(&format!(
            "url = \"redis://127.0.0.1:6379\"\nca_file = {}",
            path(&files.ca)
        ))
        .unwrap_err();
        let client = redis(&format!(
            "urls = [\"redis://a:7000\"]\nclient_cert = {}\nclient_key = {}",
            path(&files.client_cert),
            path(&files.client_key)
        ))
        .unwrap_err();

        assert!(ca.to_string().contains("counters.redis.ca_file"), "{ca}");
        assert!(ca.to_string().contains("rediss://"), "{ca}");
        assert!(
            client.to_string().contains("counters.redis.client_cert"),
            "{client}"
        );
    }

    #[test]
    fn a_client_certificate_without_its_key_is_refused_naming_the_missing_key() {
        let files = files();

        let no_key = redis(&format!(
            "url = \"rediss://h:6380\"\nclient_cert = {}",
            path(&files.client_cert)
        ))
        .unwrap_err();
        let no_cert = redis(&format!(
            "url = \"rediss://h:6380\"\nclient_key = {}",
            path(&files.client_key)
        ))
        .unwrap_err();

        assert!(
            no_key.to_string().contains("counters.redis.client_key"),
            "{no_key}"
        );
        assert!(
            no_cert.to_string().contains("counters.redis.client_cert"),
            "{no_cert}"
        );
    }

    #[test]
    fn unreadable_or_non_pem_files_are_refused_naming_the_key_and_the_file() {
        let files = files();
        let dir = TempDir::new().unwrap();
        let not_pem = dir.path().join("not.pem");
        std::fs::write(&not_pem, "just some text\n").unwrap();

        let missing_ca =
            redis("url = \"rediss://h:6380\"\nca_file = \"/nonexistent/ca.pem\"").unwrap_err();
        let ca_not_pem = redis(&format!(
            "url = \"rediss://h:6380\"\nca_file = {}",
            path(&not_pem)
        ))
        .unwrap_err();
        let key_not_pem = redis(&format!(
            "url = \"rediss://h:6380\"\nclient_cert = {}\nclient_key = {}",
            path(&files.client_cert),
            path(&not_pem)
        ))
        .unwrap_err();
        let cert_not_pem = redis(&format!(
            "url = \"rediss://h:6380\"\nclient_cert = {}\nclient_key = {}",
            path(&not_pem),
            path(&files.client_key)
        ))
        .unwrap_err();

        let message = format!("{missing_ca:#}");
        assert!(message.contains("counters.redis.ca_file"), "{message}");
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");
        for (error, key) in [
            (&ca_not_pem, "counters.redis.ca_file"),
            (&key_not_pem, "counters.redis.client_key"),
            (&cert_not_pem, "counters.redis.client_cert"),
        ] {
            let message = error.to_string();
            assert!(message.contains(key), "{key}: {message}");
            assert!(message.contains("not.pem"), "{key}: {message}");
        }
    }

    #[test]
    fn a_client_key_of_another_certificate_is_refused() {
        let files = files();
        let other = self::files();

        let error = redis(&format!(
            "url = \"rediss://h:6380\"\nclient_cert = {}\nclient_key = {}",
            path(&files.client_cert),
            path(&other.client_key)
        ))
        .unwrap_err();

        assert!(
            error.to_string().contains("counters.redis.client_key"),
            "{error}"
        );
        assert!(
            !error
                .to_string()
                .contains(other.client_key_pem.lines().nth(1).unwrap()),
            "{error}"
        );
    }

    #[test]
    fn urls_that_mix_schemes_or_skip_verification_are_refused() {
        let mixed = redis("urls = [\"redis://a:7000\", \"rediss://b:7001\"]").unwrap_err();
        let insecure = redis("url = \"rediss://h:6380/#insecure\"").unwrap_err();

        assert!(mixed.to_string().contains("counters.redis.urls"), "{mixed}");
        assert!(
            insecure.to_string().contains("counters.redis.url"),
            "{insecure}"
        );
        assert!(insecure.to_string().contains("verif"), "{insecure}");
    }
}
