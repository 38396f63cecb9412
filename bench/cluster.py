"""The cluster load behind bench/cluster (issue 4); standard library only.

Starts a private redis-server and PostgreSQL, the mock backend and Sluice
nodes that share definitions (PostgreSQL) and counters (Redis), all on free
ports of 127.0.0.1, and runs a skewed, saturating load against one API capped
at LIMIT requests per SECOND, for each strategy:

  phase 1: node A takes 8 connections, node B 2, node C none;
  phase 2: node C takes B's 2 connections, B goes idle;
  phase 3: a fourth node D joins and takes 2 connections.

Then the same total load against one node counting locally. For each run it
prints what the backend received per admission window, the utilization (the
share of the limit forwarded over the full windows), the Redis calls per
forwarded request over the run and with three and with four live nodes
(round trips from INFO commandstats: script calls, heartbeats included, not
the commands the scripts run inside Redis) and the
requests/s the nodes answered (forwarded and throttled).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from base64 import b64encode

from local_http import call, free_port

PHASE = int(sys.argv[1]) if len(sys.argv) > 1 else 10
LIMIT = int(sys.argv[2]) if len(sys.argv) > 2 else 300
BIN = os.environ.get("SLUICE_BIN", "target/release/sluice")
PASSWORD = "cluster-bench-password"
AUTH = "Basic " + b64encode(f"admin:{PASSWORD}".encode()).decode()


def wait_for(what, check, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (OSError, subprocess.CalledProcessError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready within {seconds} s")


class Processes:
    """Child processes, stopped (SIGTERM, then SIGKILL) at the end."""

    def __init__(self):
        self.running = []

    def start(self, args, **kwargs):
        process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                   **kwargs)
        self.running.append(process)
        return process

    def stop(self, process):
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
        self.running.remove(process)

    def stop_all(self):
        for process in list(self.running):
            self.stop(process)


def postgres_binaries():
    found = sorted(p for p in os.listdir("/usr/lib/postgresql") if p.isdigit())
    if not found:
        sys.exit("PostgreSQL server binaries not found under /usr/lib/postgresql")
    return f"/usr/lib/postgresql/{found[-1]}/bin"


class Postgres:
    """A private PostgreSQL cluster in a temporary directory."""

    def __init__(self, work):
        self.dir = os.path.join(work, "pg")
        self.port = free_port()
        self.bin = postgres_binaries()
        os.mkdir(self.dir)
        self.run_as = []
        if os.geteuid() == 0:  # the server refuses to run as root
            shutil.chown(work, "postgres")
            shutil.chown(self.dir, "postgres")
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self.pg(["initdb", "-D", self.dir, "-A", "trust", "-U", "postgres", "--no-sync"])
        self.pg(["pg_ctl", "-D", self.dir, "-w", "-l", os.path.join(self.dir, "log"), "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off",
                 "start"])

    def pg(self, args):
        subprocess.run(self.run_as + [os.path.join(self.bin, args[0])] + args[1:],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def url(self):
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self):
        self.pg(["pg_ctl", "-D", self.dir, "-m", "fast", "-w", "stop"])


class Redis:
    def __init__(self, processes):
        self.port = free_port()
        processes.start(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                         "--save", "", "--appendonly", "no"])
        wait_for("redis-server", lambda: self.cli("PING") == "PONG")

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], check=True,
                              capture_output=True, text=True).stdout.strip()

    def calls(self):
        """Round trips from the nodes since the last CONFIG RESETSTAT: script
        calls and connection set-up. INFO commandstats also counts each
        command a script runs inside Redis (TIME, HMGET, HINCRBY...); those
        are not round trips and are left out."""
        sent = {"evalsha", "eval", "evalsha_ro", "eval_ro", "script",
                "hello", "client", "select", "auth", "readonly", "cluster"}
        return sum(int(m.group(2)) for m in re.finditer(
            r"^cmdstat_(\w+):calls=(\d+)", self.cli("INFO", "commandstats"), re.M)
            if m.group(1) in sent)


class Node:
    """One `sluice serve`."""

    def __init__(self, processes, work, name, store, counters):
        self.gateway, self.admin = free_port(), free_port()
        data = os.path.join(work, f"node-{name}")
        os.makedirs(data, exist_ok=True)
        config = os.path.join(data, "sluice.toml")
        with open(config, "w") as f:
            f.write(f"""[gateway]
listen = "127.0.0.1:{self.gateway}"
admission_header = true
[admin]
listen = "127.0.0.1:{self.admin}"
{store(data)}
{counters}
[log]
level = "warn"
access_log = false
""")
        self.process = processes.start([BIN, "serve", "--config", config],
                                       env={**os.environ, "SLUICE_ADMIN_PASSWORD": PASSWORD})
        wait_for(f"node {name}", lambda: call(self.admin, "GET", "/healthz")[0] == 200)

    def publish(self, name, mock_port):
        url = f"http://127.0.0.1:{mock_port}"
        api = {"name": name, "context": f"/{name}", "version": "v1",
               "endpointConfig": {"endpoint_type": "http",
                                  "production_endpoints": {"url": url},
                                  "sandbox_endpoints": {"url": url}},
               "maxTps": {"production": LIMIT, "productionTimeUnit": "SECOND"},
               "x-sluice": {"open": True}}
        status, _, data = call(self.admin, "POST", "/api/am/publisher/v4/apis", api,
                            {"authorization": AUTH})
        if status != 201:
            raise RuntimeError(f"publish {name}: {status} {data[:300]!r}")

    def serves(self, path):
        return call(self.gateway, "GET", path)[0] in (200, 503)


def wrk(node, connections, path):
    return subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{PHASE}s", "--timeout", "10s",
                             f"http://127.0.0.1:{node.gateway}{path}"],
                            stdout=subprocess.PIPE, text=True)


def answered(outputs):
    """Requests answered in all wrk runs."""
    return sum(int(m.group(1)) for out in outputs for m in re.finditer(r"(\d+) requests in", out))


def windows(mock_port):
    _, _, data = call(mock_port, "GET", "/__mock/stats")
    counts = {}
    for stamp, count in json.loads(data)["by_admission"].items():
        fields = dict(part.strip().split("=", 1) for part in stamp.split(";"))
        if fields.get("unit") == "SECOND" and fields.get("environment") == "production":
            counts[int(fields["window"])] = counts.get(int(fields["window"]), 0) + count
    return counts


def report(title, counts, calls, answers, seconds):
    if not counts:
        print(f"{title}: the backend received nothing")
        return None
    first, last = min(counts), max(counts)
    full = range(first + 1, last)  # the edge windows are partial
    per_window = [counts.get(w, 0) for w in full]
    forwarded = sum(counts.values())
    utilization = sum(per_window) / (LIMIT * len(per_window)) if per_window else 0.0
    over = [c for c in counts.values() if c > LIMIT]
    rate = answers / seconds
    print(f"\n{title}")
    print(f"  forwarded per window (limit {LIMIT}): {per_window}")
    print(f"  windows over the limit: {len(over)}; max in one window: {max(counts.values())}")
    print(f"  utilization over {len(per_window)} full windows: {utilization:.1%}")
    if calls is not None:
        print(f"  Redis calls: {calls} for {forwarded} forwarded requests "
              f"({calls / forwarded:.3f} per forwarded request)")
    print(f"  answered (forwarded and throttled): {answers} in {seconds:.0f} s, {rate:.0f} req/s")
    return rate


def run_cluster(processes, work, postgres, redis, strategy):
    mock_port = free_port()
    mock = processes.start([BIN, "mock-backend", "--listen", f"127.0.0.1:{mock_port}"])
    wait_for("mock backend", lambda: call(mock_port, "GET", "/__mock/stats")[0] == 200)
    store = lambda data: f'[store]\nurl = "{postgres.url()}"\ndata_dir = "{data}"'
    counters = (f'[counters]\nbackend = "redis"\n[counters.redis]\n'
                f'url = "redis://127.0.0.1:{redis.port}"\nstrategy = "{strategy}"')
    name, path = f"capped-{strategy}", f"/capped-{strategy}/v1/items"
    nodes = {n: Node(processes, work, f"{strategy}-{n}", store, counters) for n in "ABC"}
    nodes["A"].publish(name, mock_port)
    for node in nodes.values():
        wait_for("the API on every node", lambda node=node: node.serves(path))
    time.sleep(1.5)  # heartbeats: every node counts the others
    call(mock_port, "GET", "/__mock/stats")
    redis.cli("CONFIG", "RESETSTAT")
    mock_before = windows(mock_port)
    started = time.monotonic()
    outputs = []
    by_live_nodes = {}  # live nodes -> [Redis calls, forwarded requests]
    for loads in ({"A": 8, "B": 2}, {"A": 8, "C": 2}, {"A": 8, "C": 2, "D": 2}):
        if "D" in loads and "D" not in nodes:
            nodes["D"] = Node(processes, work, f"{strategy}-D", store, counters)
            wait_for("the API on node D", lambda: nodes["D"].serves(path))
        calls_before, forwarded_before = redis.calls(), sum(windows(mock_port).values())
        runs = [wrk(nodes[n], c, path) for n, c in loads.items()]
        outputs += [run.communicate()[0] for run in runs]
        phase = by_live_nodes.setdefault(len(nodes), [0, 0])
        phase[0] += redis.calls() - calls_before
        phase[1] += sum(windows(mock_port).values()) - forwarded_before
    seconds = time.monotonic() - started
    calls = redis.calls()
    counts = {w: c - mock_before.get(w, 0) for w, c in windows(mock_port).items()}
    counts = {w: c for w, c in counts.items() if c > 0}
    rate = report(f"{strategy}: 3 nodes, then 4, on one Redis", counts, calls,
                  answered(outputs), seconds)
    for live, (phase_calls, forwarded) in sorted(by_live_nodes.items()):
        if forwarded:
            print(f"  with {live} live nodes: {phase_calls / forwarded:.3f} Redis calls "
                  f"per forwarded request ({phase_calls} for {forwarded})")
    for node in nodes.values():
        processes.stop(node.process)
    processes.stop(mock)
    return rate


def run_local(processes, work):
    mock_port = free_port()
    mock = processes.start([BIN, "mock-backend", "--listen", f"127.0.0.1:{mock_port}"])
    wait_for("mock backend", lambda: call(mock_port, "GET", "/__mock/stats")[0] == 200)
    store = lambda data: f'[store]\nurl = "sqlite://{data}/sluice.db"'
    node = Node(processes, work, "local", store, '[counters]\nbackend = "local"')
    node.publish("capped-local", mock_port)
    path = "/capped-local/v1/items"
    wait_for("the API", lambda: node.serves(path))
    started = time.monotonic()
    outputs = []
    for connections in (10, 10, 12):  # the cluster runs' total per phase
        outputs.append(wrk(node, connections, path).communicate()[0])
    seconds = time.monotonic() - started
    rate = report("local: one node counting on its own", windows(mock_port), None,
                  answered(outputs), seconds)
    processes.stop(node.process)
    processes.stop(mock)
    return rate


def main():
    for tool in ("wrk", "redis-server", "redis-cli"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is required (apt-get install wrk redis-server redis-tools)")
    work = tempfile.mkdtemp(prefix="sluice-cluster-bench-")
    processes = Processes()
    postgres = None
    try:
        postgres = Postgres(work)
        redis = Redis(processes)
        print(f"cluster bench: limit {LIMIT}/SECOND, phases of {PHASE} s, {BIN}", flush=True)
        rates = {s: run_cluster(processes, work, postgres, redis, s) for s in ("exact", "leased")}
        local = run_local(processes, work)
        if local:
            print("\nrequests/s answered, cluster (all nodes) against one local node:")
            for strategy, rate in rates.items():
                if rate:
                    print(f"  {strategy}: {rate:.0f} / {local:.0f} = {rate / local:.2f}x")
    finally:
        processes.stop_all()
        if postgres:
            postgres.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
