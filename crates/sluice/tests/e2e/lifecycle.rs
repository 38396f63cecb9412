//! The server's life (issue 2, point 1): definitions survive a restart, the
//! first admin password is generated into an owner-only file whose path is
//! printed, shutdown drains in-flight requests, and a bad config file stops
//! the start with a message naming the key.

use crate::common;

use common::{
    ADMIN_PASSWORD, ApiSpec, PUBLISHER, Reply, Sluice, http_client, start_mock,
    start_mock_with_latency, test_config, url_of, wait_until,
};
use sluice_limits::SystemClock;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;
use tempfile::TempDir;

const SLUICE: &str = env!("CARGO_BIN_EXE_sluice");

/// A config file for the binary: free ports, the store in `data_dir`.
fn write_config(data_dir: &Path, extra_gateway_line: &str) -> PathBuf {
    let path = data_dir.join("sluice.toml");
    let text = format!(
        "[gateway]\nlisten = \"127.0.0.1:0\"\n{extra_gateway_line}\n\
         [admin]\nlisten = \"127.0.0.1:0\"\n\
         [store]\nurl = \"sqlite://{}\"\n\
         [log]\naccess_log = false\n",
        data_dir.join("sluice.db").display()
    );
    std::fs::write(&path, text).expect("config written");
    path
}

/// The binary, without the environment variables that would change its start.
fn sluice_command() -> Command {
    let mut command = Command::new(SLUICE);
    command
        .env_remove("SLUICE_ADMIN_PASSWORD")
        .env_remove("SLUICE_KEY_PEPPER")
        .env_remove("RUST_LOG");
    command
}

#[tokio::test]
async fn definitions_and_keys_survive_a_restart() {
    // Arrange: an API and a key, saved, then the server stopped.
    let data_dir = TempDir::new().expect("a temporary directory");
    let config = test_config(data_dir.path());
    let backend = start_mock().await;
    let first = Sluice::start_with(
        &config,
        Arc::new(SystemClock::new()),
        Some(ADMIN_PASSWORD.into()),
    )
    .await;
    let api = first
        .publish(ApiSpec::new("durable").backend(&backend))
        .await;
    let key = first.subscribe_new_application(&api).await.production_key;
    first.shutdown().await;

    // Act: start again on the same data directory.
    let second = Sluice::start_with(
        &config,
        Arc::new(SystemClock::new()),
        Some(ADMIN_PASSWORD.into()),
    )
    .await;
    let reply = second.get(&api.path("/"), Some(&key)).await;

    // Assert.
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(backend.stats().requests(), 1);
    second.shutdown().await;
}

#[tokio::test]
async fn a_first_start_without_admin_password_writes_one_only_the_owner_can_read() {
    let data_dir = TempDir::new().expect("a temporary directory");
    let config = test_config(data_dir.path());

    let sluice = Sluice::start_with(&config, Arc::new(SystemClock::new()), None).await;

    let file = sluice
        .running()
        .initial_password_file
        .clone()
        .expect("a generated password file");
    assert_eq!(file, data_dir.path().join("initial-admin-password"));
    let mode = std::fs::metadata(&file)
        .expect("the file exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let password = std::fs::read_to_string(&file).expect("readable");
    let listing = Reply::from(
        http_client()
            .get(format!("{}{PUBLISHER}/apis", url_of(sluice.admin_addr)))
            .basic_auth("admin", Some(password.trim())),
    )
    .await;
    assert_eq!(listing.status, 200, "the generated password logs in");
    sluice.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_an_in_flight_request_complete_then_stops_accepting() {
    // Arrange: a request held 300 ms by the backend.
    let backend = start_mock_with_latency(Duration::from_millis(300)).await;
    let sluice = Sluice::start().await;
    let api = sluice
        .publish(ApiSpec::new("drain").backend(&backend).open())
        .await;
    let gateway_addr = sluice.gateway_addr;
    let slow = tokio::spawn(Reply::from(
        sluice.gateway(reqwest::Method::GET, &api.path("/slow")),
    ));
    wait_until("the request reaches the backend", || {
        backend.stats().requests() == 1
    })
    .await;

    // Act.
    sluice.shutdown().await;

    // Assert.
    let reply = slow.await.expect("the request task completes");
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert!(
        tokio::net::TcpStream::connect(gateway_addr).await.is_err(),
        "the gateway no longer accepts connections"
    );
}

#[test]
fn serve_prints_the_generated_password_file_and_exits_0_on_sigterm() {
    // Arrange.
    let data_dir = TempDir::new().expect("a temporary directory");
    let config = write_config(data_dir.path(), "");
    let mut child = sluice_command()
        .args(["serve", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary starts");
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines, printed) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                return;
            }
        }
    });

    // Act: wait for the line naming the password file, then SIGTERM.
    let announced = loop {
        let line = printed
            .recv_timeout(Duration::from_secs(20))
            .expect("the binary prints where the password is");
        if line.contains("initial-admin-password") {
            break line;
        }
    };
    let terminated = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    let exit = child.wait().expect("the binary exits");

    // Assert.
    let file = data_dir.path().join("initial-admin-password");
    assert!(
        announced.contains(&file.display().to_string()),
        "{announced}"
    );
    let mode = std::fs::metadata(&file)
        .expect("the file exists")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    assert!(terminated.success());
    assert!(exit.success(), "exit status after SIGTERM: {exit}");
}

#[test]
fn serve_refuses_a_config_with_an_unknown_key_and_names_it() {
    let data_dir = TempDir::new().expect("a temporary directory");
    let config = write_config(data_dir.path(), "listen_adress = \"127.0.0.1:0\"");

    let output = sluice_command()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("the binary runs");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("listen_adress"), "stderr: {stderr}");
}

#[test]
fn check_config_accepts_a_good_file() {
    let data_dir = TempDir::new().expect("a temporary directory");
    let config = write_config(data_dir.path(), "first_byte_timeout = \"2s\"");

    let output = sluice_command()
        .arg("check-config")
        .arg(&config)
        .output()
        .expect("the binary runs");

    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}
