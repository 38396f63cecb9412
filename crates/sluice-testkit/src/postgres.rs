//! A private PostgreSQL server for one test: `initdb` in a temporary
//! directory, `pg_ctl start` on a random free port of 127.0.0.1 with trust
//! authentication and no Unix socket, stopped and deleted on drop.
//!
//! The server binaries are looked up in `SLUICE_TEST_PG_BIN`, then where
//! Debian keeps them (`/usr/lib/postgresql/<major>/bin`, newest first), then on
//! `PATH`. PostgreSQL refuses to run as root, so when the tests run as root
//! the server runs as the `postgres` system user (`runuser`), which owns the
//! temporary directory. Durability is switched off (`fsync=off`): the data
//! only has to outlive a stop and start, not a power cut.
//!
//! [`PostgresServer::stop`] and [`PostgresServer::start_again`] (same port,
//! same data) let a test take the database away and bring it back.

use crate::free_port;
use std::env;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tempfile::TempDir;

/// The superuser `initdb` creates, and the database every cluster has.
const SUPERUSER: &str = "postgres";
/// The system user the server runs as when the tests run as root.
const SYSTEM_USER: &str = "postgres";
/// How many random ports to try before giving up (another process may take
/// a port between probing it and the server binding it).
const PORT_ATTEMPTS: usize = 3;

/// A running PostgreSQL server owned by a test.
#[derive(Debug)]
pub struct PostgresServer {
    binaries: PathBuf,
    run_as: Option<&'static str>,
    port: u16,
    dir: TempDir,
}

impl PostgresServer {
    /// Create a fresh cluster and start it. Panics with a message naming what
    /// to install when PostgreSQL is missing, or with the server's log when it
    /// does not start.
    pub fn start() -> Self {
        let binaries = find_binaries().unwrap_or_else(|message| panic!("{message}"));
        let run_as = server_user();
        let dir = TempDir::with_prefix("sluice-pg-").expect("a temporary directory");
        if run_as.is_some() {
            give_to_system_user(dir.path());
        }
        let mut server = Self {
            binaries,
            run_as,
            port: 0,
            dir,
        };
        server.initdb();
        let mut last_failure = String::new();
        for _ in 0..PORT_ATTEMPTS {
            server.port = free_port();
            match server.pg_ctl_start() {
                Ok(()) => return server,
                Err(failure) => last_failure = failure,
            }
        }
        panic!("PostgreSQL did not start:\n{last_failure}");
    }

    /// `postgres://postgres@127.0.0.1:PORT/postgres`: the superuser on the
    /// default database.
    pub fn url(&self) -> String {
        self.url_for("postgres")
    }

    /// The URL of `database` on this server, as the superuser.
    pub fn url_for(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// The TCP port the server listens on (kept across stop and start).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stop the server (fast shutdown: clients are disconnected). Panics if it
    /// does not stop.
    pub fn stop(&self) {
        let output = self.pg_ctl(&["-m", "fast", "-w", "-t", "30", "stop"]);
        assert!(
            output.status.success(),
            "pg_ctl stop: {}",
            describe(&output)
        );
    }

    /// Start the stopped server again on the same port with the same data.
    pub fn start_again(&self) {
        if let Err(failure) = self.pg_ctl_start() {
            panic!("PostgreSQL did not start again:\n{failure}");
        }
    }

    /// Run SQL as the superuser with `psql` and return what it printed
    /// (unaligned, tuples only). Panics if the SQL fails.
    pub fn psql(&self, sql: &str) -> String {
        let psql = self.binaries.join("psql");
        let port = self.port.to_string();
        let output = Command::new(&psql)
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
            ])
            .args(["-c", sql])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", psql.display()));
        assert!(
            output.status.success(),
            "psql {sql:?}: {}",
            describe(&output)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn initdb(&self) {
        let data = self.data_dir();
        let output = self.as_server_user(&self.binaries.join("initdb"), |command| {
            command
                .arg("-D")
                .arg(&data)
                .args(["-A", "trust", "-U", SUPERUSER, "-E", "UTF8"])
                .args(["--no-locale", "--no-sync"]);
        });
        assert!(output.status.success(), "initdb: {}", describe(&output));
    }

    fn pg_ctl_start(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' \
             -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c shared_buffers=16MB -c max_connections=50",
            self.port
        );
        let log = self.log_file();
        let log = log.to_str().expect("a UTF-8 temporary path");
        let output = self.pg_ctl(&["-w", "-t", "30", "-l", log, "-o", &options, "start"]);
        if output.status.success() {
            Ok(())
        } else {
            let log = fs::read_to_string(self.log_file()).unwrap_or_default();
            Err(format!("{}\nserver log:\n{log}", describe(&output)))
        }
    }

    fn pg_ctl(&self, arguments: &[&str]) -> Output {
        let data = self.data_dir();
        self.as_server_user(&self.binaries.join("pg_ctl"), |command| {
            command.arg("-D").arg(&data).args(arguments);
        })
    }

    /// Run `program` as the user the server runs as.
    fn as_server_user(&self, program: &Path, arguments: impl FnOnce(&mut Command)) -> Output {
        let mut command = match self.run_as {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program);
                command
            }
            None => Command::new(program),
        };
        arguments(&mut command);
        command
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // Immediate: the directory is deleted next, nothing needs flushing.
        let _ = self.pg_ctl(&["-m", "immediate", "-w", "-t", "30", "stop"]);
    }
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`, or a message
/// saying what to install.
fn find_binaries() -> Result<PathBuf, String> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|binary| dir.join(binary).is_file())
    };
    if let Some(dir) = env::var_os("SLUICE_TEST_PG_BIN") {
        let dir = PathBuf::from(dir);
        return if complete(&dir) {
            Ok(dir)
        } else {
            Err(format!(
                "SLUICE_TEST_PG_BIN={} does not hold initdb, pg_ctl and postgres",
                dir.display()
            ))
        };
    }
    let mut debian: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse().ok()?;
            Some((major, entry.path().join("bin")))
        })
        .collect();
    debian.sort_by_key(|(major, _)| std::cmp::Reverse(*major));
    let on_path = env::var_os("PATH")
        .map(|path| env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    debian
        .into_iter()
        .map(|(_, dir)| dir)
        .chain(on_path)
        .find(|dir| complete(dir))
        .ok_or_else(|| {
            "these tests need the PostgreSQL server binaries (initdb, pg_ctl, postgres), found \
             neither in /usr/lib/postgresql/<major>/bin nor on PATH: install PostgreSQL \
             (Debian/Ubuntu: `apt-get install postgresql`; scripts/test installs it) or set \
             SLUICE_TEST_PG_BIN to the directory that holds them"
                .to_owned()
        })
}

/// `Some("postgres")` when this process runs as root (PostgreSQL refuses to),
/// `None` when the server can run as the current user.
fn server_user() -> Option<&'static str> {
    let uid = fs::metadata("/proc/self")
        .map(|meta| meta.uid())
        .unwrap_or(u32::MAX);
    (uid == 0).then_some(SYSTEM_USER)
}

/// Hand the (empty) temporary directory to the `postgres` system user.
fn give_to_system_user(dir: &Path) {
    let id = |flag: &str| -> u32 {
        let output = Command::new("id")
            .args([flag, SYSTEM_USER])
            .output()
            .expect("can run `id`");
        assert!(
            output.status.success(),
            "PostgreSQL refuses to run as root and there is no `{SYSTEM_USER}` system user to \
             run it as: install PostgreSQL (Debian/Ubuntu: `apt-get install postgresql`), which \
             creates it"
        );
        String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .expect("`id` prints a number")
    };
    std::os::unix::fs::chown(dir, Some(id("-u")), Some(id("-g")))
        .unwrap_or_else(|e| panic!("cannot give {} to {SYSTEM_USER}: {e}", dir.display()));
}

fn describe(output: &Output) -> String {
    format!(
        "{}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_started_server_answers_sql_and_keeps_its_data_across_a_stop_and_start() {
        let server = PostgresServer::start();
        server.psql("CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (42)");

        server.stop();
        server.start_again();

        assert_eq!(server.psql("SELECT n FROM t"), "42");
        assert!(
            server
                .url()
                .ends_with(&format!(":{}/postgres", server.port()))
        );
    }

    #[test]
    fn a_stopped_server_refuses_connections() {
        let server = PostgresServer::start();

        server.stop();

        assert!(std::net::TcpStream::connect(("127.0.0.1", server.port())).is_err());
    }
}
