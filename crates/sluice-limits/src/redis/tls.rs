//! TLS material for `rediss://` beyond the defaults: the CAs the Redis
//! server is verified against instead of the system roots, and a client
//! certificate for servers that require one (mutual TLS).
//!
//! The bytes are PEM as read from the configured files; the configuration
//! checks them when it is loaded, the Redis client parses them again when it
//! is built. The server's certificate is always verified: there is no way to
//! turn that off here.

use std::fmt;

/// PEM material of a `rediss://` connection.
#[derive(Clone, Default)]
pub struct RedisTls {
    /// PEM CA certificates the server is verified against; `None` uses the
    /// system roots.
    pub ca_pem: Option<Vec<u8>>,
    /// The certificate this node presents, when the server requires one.
    pub client: Option<ClientIdentity>,
}

/// A client certificate chain and its private key, both PEM.
#[derive(Clone)]
pub struct ClientIdentity {
    /// PEM certificate chain, leaf first.
    pub cert_pem: Vec<u8>,
    /// PEM private key of the leaf (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: Vec<u8>,
}

impl RedisTls {
    /// The certificates in the form the Redis client takes.
    pub(crate) fn certificates(&self) -> redis::TlsCertificates {
        redis::TlsCertificates {
            client_tls: self.client.as_ref().map(|client| redis::ClientTlsConfig {
                client_cert: client.cert_pem.clone(),
                client_key: client.key_pem.clone(),
            }),
            root_cert: self.ca_pem.clone(),
        }
    }
}

/// Says what is set, never the bytes: the key is a secret and certificates
/// only clutter a log line.
impl fmt::Debug for RedisTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTls")
            .field(
                "ca",
                &if self.ca_pem.is_some() {
                    "ca_file"
                } else {
                    "system roots"
                },
            )
            .field("client", &self.client)
            .finish()
    }
}

impl fmt::Debug for ClientIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientIdentity")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &format_args!("<redacted>"))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_key_or_the_certificates() {
        let tls = RedisTls {
            ca_pem: Some(b"-----BEGIN CERTIFICATE-----\nCA-BYTES\n".to_vec()),
            client: Some(ClientIdentity {
                cert_pem: b"-----BEGIN CERTIFICATE-----\nCERT-BYTES\n".to_vec(),
                key_pem: b"-----BEGIN PRIVATE KEY-----\nKEY-BYTES\n".to_vec(),
            }),
        };

        let printed = format!("{tls:?}");

        for secret in ["CA-BYTES", "CERT-BYTES", "KEY-BYTES", "BEGIN"] {
            assert!(!printed.contains(secret), "{printed}");
        }
        assert!(printed.contains("redacted"), "{printed}");
    }
}
