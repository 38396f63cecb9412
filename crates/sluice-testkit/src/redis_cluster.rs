//! A private Redis Cluster for one test: `masters` `redis-server` processes
//! with `--cluster-enabled yes` on free ports of 127.0.0.1, joined by
//! `redis-cli --cluster create` (no replicas), killed on drop.
//!
//! Each node has its own temporary directory (its `nodes.conf` and log) and
//! an explicit cluster bus port (`--cluster-port`), free like the client
//! port: the default bus port, client port + 10000, may be taken, or past
//! 65535 for a random client port.

use crate::free_port;
use crate::redis::script_calls_in;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long the nodes have to listen, and then to agree on the slots.
const READY_WITHIN: Duration = Duration::from_secs(10);

/// A Redis Cluster of masters only, owned by a test.
pub struct RedisCluster {
    masters: Vec<Master>,
}

struct Master {
    port: u16,
    child: Child,
    dir: TempDir,
}

/// Run `redis-cli -p port args...` and return its standard output.
fn redis_cli(port: u16, args: &[&str]) -> String {
    let output = Command::new("redis-cli")
        .arg("-p")
        .arg(port.to_string())
        .args(args)
        .output()
        .expect("redis-cli is required for these tests: apt-get install redis-tools");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl Master {
    fn spawn() -> Self {
        let port = free_port();
        let dir = TempDir::with_prefix("sluice-redis-cluster-").expect("a temporary directory");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
            .args(["--cluster-port", &free_port().to_string()])
            .arg("--cluster-config-file")
            .arg(dir.path().join("nodes.conf"))
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(dir.path())
            .arg("--logfile")
            .arg(dir.path().join("redis.log"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is required for these tests: apt-get install redis-server");
        Self { port, child, dir }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("redis.log")).unwrap_or_default()
    }

    fn wait_listening(&self, deadline: Instant) {
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "cluster node on port {} did not listen within {READY_WITHIN:?}; its log:\n{}",
            self.port,
            self.log()
        );
    }

    fn cluster_ok(&self) -> bool {
        redis_cli(self.port, &["CLUSTER", "INFO"])
            .lines()
            .any(|line| line.trim() == "cluster_state:ok")
    }

    fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl RedisCluster {
    /// Start `masters` nodes (at least 3, as `redis-cli --cluster create`
    /// requires), split the 16384 slots between them in port order, and wait
    /// until every node reports `cluster_state:ok`. Panics with a message
    /// naming the package when `redis-server` or `redis-cli` is missing.
    pub fn start(masters: usize) -> Self {
        assert!(masters >= 3, "a Redis Cluster needs at least 3 masters");
        let cluster = Self {
            masters: (0..masters).map(|_| Master::spawn()).collect(),
        };
        let deadline = Instant::now() + READY_WITHIN;
        for master in &cluster.masters {
            master.wait_listening(deadline);
        }
        let addresses: Vec<String> = cluster
            .masters
            .iter()
            .map(|master| format!("127.0.0.1:{}", master.port))
            .collect();
        let created = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli is required for these tests: apt-get install redis-tools");
        assert!(
            created.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&created.stdout),
            String::from_utf8_lossy(&created.stderr)
        );
        while !cluster.masters.iter().all(Master::cluster_ok) {
            assert!(
                Instant::now() < deadline,
                "the cluster was not ok within {READY_WITHIN:?}; node directories: {:?}",
                cluster.masters.iter().map(Master::dir).collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// `redis://127.0.0.1:PORT` of every master, to use as seed nodes.
    pub fn seeds(&self) -> Vec<String> {
        self.masters
            .iter()
            .map(|master| format!("redis://127.0.0.1:{}", master.port))
            .collect()
    }

    /// `INFO commandstats` calls of `evalsha` plus `eval`, summed over the
    /// masters.
    pub fn script_calls(&self) -> u64 {
        self.masters
            .iter()
            .map(|master| script_calls_in(&redis_cli(master.port, &["INFO", "commandstats"])))
            .sum()
    }

    /// How many keys matching `pattern` each master holds, masters in the
    /// order of their slot ranges.
    pub fn keys_per_master(&self, pattern: &str) -> Vec<usize> {
        self.masters
            .iter()
            .map(|master| {
                redis_cli(master.port, &["--scan", "--pattern", pattern])
                    .lines()
                    .filter(|line| !line.is_empty())
                    .count()
            })
            .collect()
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for master in &mut self.masters {
            let _ = master.child.kill();
            let _ = master.child.wait();
        }
    }
}
