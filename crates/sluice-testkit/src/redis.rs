//! Private `redis-server` processes: each test starts its own on a free
//! port, and can pause, kill and restart it. A server can also listen with
//! TLS only (`rediss://`), with certificates from a CA made for the test,
//! and may require client certificates (mutual TLS).

use crate::free_port;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process on `127.0.0.1`.
pub struct RedisServer {
    /// The port it listens on: plain, or TLS for a TLS-only server.
    pub port: u16,
    child: Option<Child>,
    dir: tempfile::TempDir,
    tls: Option<RedisTlsFiles>,
}

/// The certificate files of a TLS-only server, in its directory.
pub struct RedisTlsFiles {
    /// PEM certificate of the CA that signed the server's and the client's
    /// certificates.
    pub ca_cert: PathBuf,
    /// PEM client certificate signed by the CA, for mutual TLS.
    pub client_cert: PathBuf,
    /// PEM private key of `client_cert`.
    pub client_key: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    require_client_cert: bool,
}

/// A certificate authority made for one test (rcgen, ECDSA P-256).
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A new CA, unrelated to any other.
    pub fn new() -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "Sluice test CA");
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self { issuer }
    }

    /// The CA's certificate, PEM.
    pub fn cert_pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `names` (DNS names or IP addresses) signed by this
    /// CA: its PEM certificate and its PEM private key.
    pub fn issue(&self, names: &[&str]) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|name| (*name).to_owned()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        // OpenSSL (redis-server, redis-cli) takes a certificate whose
        // subject is its issuer's for self-signed, and rcgen gives every
        // certificate the same default subject: each gets its own.
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().map_or("leaf", String::as_str),
        );
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

impl RedisTlsFiles {
    /// A new CA, a server certificate for `127.0.0.1` and `localhost` and a
    /// client certificate, written to `dir`.
    fn write(dir: &Path, require_client_cert: bool) -> Self {
        let ca = TestCa::new();
        let (server_cert_pem, server_key_pem) = ca.issue(&["127.0.0.1", "localhost"]);
        let (client_cert_pem, client_key_pem) = ca.issue(&["sluice-test-client"]);
        let write = |name: &str, pem: &str| {
            let path = dir.join(name);
            std::fs::write(&path, pem).unwrap();
            path
        };
        Self {
            ca_cert: write("ca.pem", &ca.cert_pem()),
            client_cert: write("client.pem", &client_cert_pem),
            client_key: write("client-key.pem", &client_key_pem),
            server_cert: write("server.pem", &server_cert_pem),
            server_key: write("server-key.pem", &server_key_pem),
            require_client_cert,
        }
    }
}

/// How a server listens.
#[derive(Clone, Copy)]
enum Listen {
    Plain,
    Tls { require_client_cert: bool },
}

impl RedisServer {
    /// Start one; fails with a clear message when `redis-server` is missing.
    pub fn start() -> Self {
        Self::start_with(Listen::Plain)
    }

    /// Start one that listens with TLS only (`rediss://`) and asks clients
    /// for no certificate.
    pub fn start_tls() -> Self {
        Self::start_with(Listen::Tls {
            require_client_cert: false,
        })
    }

    /// Start one that listens with TLS only and requires a client
    /// certificate signed by its CA ([`RedisTlsFiles::client_cert`]).
    pub fn start_mutual_tls() -> Self {
        Self::start_with(Listen::Tls {
            require_client_cert: true,
        })
    }

    fn start_with(listen: Listen) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tls = match listen {
            Listen::Plain => None,
            Listen::Tls {
                require_client_cert,
            } => Some(RedisTlsFiles::write(dir.path(), require_client_cert)),
        };
        let mut server = Self {
            port: free_port(),
            child: None,
            dir,
            tls,
        };
        server.spawn();
        server
    }

    fn spawn(&mut self) {
        let mut command = Command::new("redis-server");
        match &self.tls {
            None => command.args(["--port", &self.port.to_string()]),
            Some(tls) => command
                .args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(&tls.server_cert)
                .arg("--tls-key-file")
                .arg(&tls.server_key)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca_cert)
                .args([
                    "--tls-auth-clients",
                    if tls.require_client_cert { "yes" } else { "no" },
                ]),
        };
        let child = command
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is required for these tests: apt-get install redis-server");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server did not listen on port {} within 10 s",
            self.port
        );
    }

    /// `redis://127.0.0.1:PORT`, or `rediss://` for a TLS-only server.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        format!("{scheme}://127.0.0.1:{}", self.port)
    }

    /// The certificate files of a TLS-only server.
    pub fn tls_files(&self) -> &RedisTlsFiles {
        self.tls
            .as_ref()
            .expect("a server started with start_tls or start_mutual_tls")
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id();
        let status = Command::new("kill")
            .args([signal, &pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Freeze it (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.signal("-STOP");
    }

    /// Thaw it (SIGCONT).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    /// Kill it (SIGKILL) and wait until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Start it again, empty, on the same port.
    pub fn restart_empty(&mut self) {
        self.kill();
        self.spawn();
    }

    /// `INFO commandstats` calls of `evalsha` plus `eval`.
    pub fn script_calls(&self) -> u64 {
        script_calls_in(&self.command(&["INFO", "commandstats"]))
    }

    /// Run one command with `redis-cli`; its output, trimmed.
    pub fn command(&self, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        if let Some(tls) = &self.tls {
            command
                .arg("--tls")
                .arg("--cacert")
                .arg(&tls.ca_cert)
                .arg("--cert")
                .arg(&tls.client_cert)
                .arg("--key")
                .arg(&tls.client_key);
        }
        let output = command
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli is required");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

/// The `evalsha` plus `eval` calls an `INFO commandstats` answer counts.
pub(crate) fn script_calls_in(commandstats: &str) -> u64 {
    commandstats
        .lines()
        .filter(|line| line.starts_with("cmdstat_evalsha:") || line.starts_with("cmdstat_eval:"))
        .filter_map(|line| {
            line.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
        }
        self.kill();
    }
}
