//! TLS, both ways: the listeners' server configuration (a certificate chain
//! and key from PEM files, ALPN `h2` and `http/1.1`) and what upstream HTTPS
//! endpoints are verified against (the system roots or a configured CA).
//!
//! An endpoint may opt out of verification (`x-sluice.tlsVerify: false` on the
//! endpoint); its connections use [`UnverifiedEndpoints`], which still runs the
//! real verification and logs every certificate it accepts in spite of it, so
//! the opt-out is never silent.

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::path::Path;
use std::sync::Arc;

/// Why TLS material could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the certificate and key (for instance, they do not match).
    #[error("the certificate and key cannot be used: {0}")]
    Rejected(#[from] rustls::Error),
}

/// The crypto provider of every TLS configuration Sluice builds.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A listener's TLS configuration from a PEM certificate chain (leaf first)
/// and a PEM private key (PKCS#8, PKCS#1 or SEC1). Offers HTTP/2 and
/// HTTP/1.1 through ALPN.
pub fn server_config(cert_file: &Path, key_file: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = read_certificates(cert_file)?;
    let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| TlsError::File {
        path: key_file.display().to_string(),
        reason: format!("no usable private key ({e})"),
    })?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Every certificate of a PEM file; an error when there is none.
pub fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let file_error = |reason: String| TlsError::File {
        path: path.display().to_string(),
        reason,
    };
    let certificates = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(format!("cannot read certificates ({e})")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(format!("invalid PEM ({e})")))?;
    if certificates.is_empty() {
        return Err(file_error("no certificate in the file".into()));
    }
    Ok(certificates)
}

/// What upstream HTTPS endpoints are verified against.
#[derive(Debug, Clone, Default)]
pub enum UpstreamTrust {
    /// The operating system's root certificates.
    #[default]
    SystemRoots,
    /// Only these CA certificates (`[gateway] upstream_ca_file`).
    Certificates(Vec<CertificateDer<'static>>),
}

impl UpstreamTrust {
    /// The root store: the configured CAs, or the system roots (empty, with a
    /// warning, when none can be found: plain HTTP endpoints still work).
    fn roots(&self) -> RootCertStore {
        let mut roots = RootCertStore::empty();
        match self {
            UpstreamTrust::Certificates(certificates) => {
                let (_, ignored) = roots.add_parsable_certificates(certificates.iter().cloned());
                if ignored > 0 {
                    tracing::warn!(
                        ignored,
                        "some configured upstream CA certificates are unusable"
                    );
                }
            }
            UpstreamTrust::SystemRoots => {
                let found = rustls_native_certs::load_native_certs();
                for error in &found.errors {
                    tracing::warn!(%error, "error while loading the system TLS roots");
                }
                roots.add_parsable_certificates(found.certs);
                if roots.is_empty() {
                    tracing::warn!(
                        "no system TLS roots found; HTTPS endpoints will fail verification"
                    );
                }
            }
        }
        roots
    }

    /// Client configurations for verified endpoints and for endpoints that
    /// opted out of verification.
    pub(crate) fn client_configs(&self) -> (ClientConfig, ClientConfig) {
        let roots = Arc::new(self.roots());
        let builder = || {
            ClientConfig::builder_with_provider(provider())
                .with_safe_default_protocol_versions()
                .expect("ring supports the default TLS versions")
        };
        let verified = builder()
            .with_root_certificates(Arc::clone(&roots))
            .with_no_client_auth();
        let unverified =
            match WebPkiServerVerifier::builder_with_provider(roots, provider()).build() {
                Ok(inner) => builder()
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(UnverifiedEndpoints { inner }))
                    .with_no_client_auth(),
                // No roots at all: the logging verifier has nothing to compare
                // with, so it accepts and logs everything.
                Err(_) => builder()
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(AcceptAnyLogged))
                    .with_no_client_auth(),
            };
        (verified, unverified)
    }
}

/// The verifier of endpoints with `tlsVerify: false`: it verifies as usual
/// and, when that fails, logs a warning and accepts the certificate.
#[derive(Debug)]
struct UnverifiedEndpoints {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for UnverifiedEndpoints {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Err(error) = self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            warn_unverified(server_name, &error.to_string());
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The opt-out verifier when there are no roots to verify against at all.
#[derive(Debug)]
struct AcceptAnyLogged;

impl ServerCertVerifier for AcceptAnyLogged {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        warn_unverified(server_name, "no trusted roots are configured");
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &provider().signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        provider()
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn warn_unverified(server_name: &ServerName<'_>, error: &str) {
    tracing::warn!(
        server = ?server_name,
        error,
        "TLS verification is off for this endpoint (tlsVerify: false): accepting a certificate that failed verification"
    );
}
