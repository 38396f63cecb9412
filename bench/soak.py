"""The soak driver behind bench/soak (issue 7, item 5); standard library only.

Starts the mock backend and `sluice serve` on free local ports, publishes the
APIs, runs wrk and the Python clients for DURATION seconds while sampling the
Sluice process, then checks memory, file descriptors, per-window counts and
error-free answers. See bench/soak for what the traffic is.
"""

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from base64 import b64encode

from local_http import call, free_port
from collections import Counter

DURATION = int(sys.argv[1]) if len(sys.argv) > 1 else 600
BIN = os.environ.get("SLUICE_BIN", "target/release/sluice")
PASSWORD = "soak-password"
SAMPLE_EVERY = 30
WARM_UP = min(60, DURATION // 5)
CAPS = [200, 300]  # the capped API's production limit alternates between these
LIMIT_CHANGE_EVERY = 45
KEY_ROTATION_EVERY = 20
# Flat: over the last third of the run (a leak grows all along; a one-off
# step, such as the allocator keeping the 19 MiB of an argon2 verification,
# does not), RSS grows by at most this much; fds never grow by more than
# this many after the warm-up.
MAX_RSS_GROWTH = 0.05
MAX_FD_GROWTH = 32


PORTS = {name: free_port() for name in ("mock", "gateway", "admin")}
AUTH = "Basic " + b64encode(f"admin:{PASSWORD}".encode()).decode()


def admin(method, path, body=None):
    status, _, data = call(PORTS["admin"], method, path, body, {"authorization": AUTH})
    if status >= 300:
        raise RuntimeError(f"{method} {path}: {status} {data[:300]!r}")
    return json.loads(data) if data else None


def definition(name, max_tps, ai=False):
    url = f"http://127.0.0.1:{PORTS['mock']}"
    api = {
        "name": name, "context": f"/{name}", "version": "v1",
        "endpointConfig": {"endpoint_type": "http",
                           "production_endpoints": {"url": url},
                           "sandbox_endpoints": {"url": url}},
        "maxTps": max_tps,
    }
    if ai:
        api["subtypeConfiguration"] = {"subtype": "AIAPI",
                                       "configuration": {"llmProviderName": "OpenAI"}}
    return api


def capped_tps(cap):
    return {"production": cap, "productionTimeUnit": "SECOND"}


AI_TPS = {
    "production": 100000, "productionTimeUnit": "MINUTE",
    "tokenBasedThrottlingConfiguration": {
        "isTokenBasedThrottlingEnabled": True,
        "productionMaxTotalTokenCount": 2_000_000,
    },
}


class Sampler:
    """Memory and file descriptors of a process."""

    def __init__(self, pid):
        self.pid = pid

    def rss_kib(self):
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def fds(self):
        return len(os.listdir(f"/proc/{self.pid}/fd"))


class Clients:
    """The Python clients: admitted GETs, AI calls (streamed and not), keys."""

    def __init__(self, application):
        self.application = application
        self.key = self.new_key()
        self.statuses = Counter()
        self.unexpected = Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def new_key(self):
        path = (f"/api/am/devportal/v3/applications/{self.application}"
                "/api-keys/PRODUCTION/generate")
        return admin("POST", path, {"validityPeriod": -1})["apikey"]

    def rotate_key(self):
        old, self.key = self.key, self.new_key()
        time.sleep(1.0)  # let in-flight requests with the old key finish
        path = (f"/api/am/devportal/v3/applications/{self.application}"
                "/api-keys/PRODUCTION/revoke")
        admin("POST", path, {"apikey": old})

    def record(self, what, status, ok):
        with self.lock:
            self.statuses[(what, status)] += 1
            if not ok:
                self.unexpected[(what, status)] += 1

    def plain(self):
        while not self.stop.is_set():
            status, _, _ = call(PORTS["gateway"], "GET", "/open/v1/items",
                                headers={"apikey": self.key})
            self.record("uncapped GET", status, status == 200)
            time.sleep(0.005)

    def ai(self, stream):
        what = "AI streamed" if stream else "AI"
        body = {"model": "gpt-4o-mini", "stream": stream, "max_tokens": 32,
                "messages": [{"role": "user", "content": "How full is the sluice?"}]}
        while not self.stop.is_set():
            status, headers, data = call(PORTS["gateway"], "POST", "/ai/v1/chat/completions",
                                         body, {"authorization": f"Bearer {self.key}"})
            ok = status == 200 or (status in (429, 503) and b"900801" in data)
            if ok and status == 200 and stream:
                ok = headers.get("content-type", "").startswith("text/event-stream") \
                    and data.rstrip().endswith(b"[DONE]")
            self.record(what, status, ok)
            time.sleep(0.02)


WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      totals[status] = (totals[status] or 0) + count
    end
  end
  for status, count in pairs(totals) do
    io.write(string.format("status %d %d\\n", status, count))
  end
end
"""


def main():
    work = tempfile.mkdtemp(prefix="sluice-soak-")
    config = os.path.join(work, "sluice.toml")
    with open(config, "w") as f:
        f.write(f"""[gateway]
listen = "127.0.0.1:{PORTS['gateway']}"
admission_header = true
[admin]
listen = "127.0.0.1:{PORTS['admin']}"
[store]
url = "sqlite://{work}/sluice.db"
[log]
level = "warn"
access_log = false
""")
    processes = []
    try:
        processes.append(subprocess.Popen(
            [BIN, "mock-backend", "--listen", f"127.0.0.1:{PORTS['mock']}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        sluice = subprocess.Popen([BIN, "serve", "--config", config],
                                  env={**os.environ, "SLUICE_ADMIN_PASSWORD": PASSWORD},
                                  stdout=open(os.path.join(work, "sluice.log"), "w"),
                                  stderr=subprocess.STDOUT)
        processes.append(sluice)
        for _ in range(300):
            try:
                if call(PORTS["admin"], "GET", "/healthz")[0] == 200:
                    break
            except OSError:
                time.sleep(0.1)
        return soak(sluice.pid, work)
    finally:
        for process in processes:
            process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()


def soak(pid, work):
    capped = admin("POST", "/api/am/publisher/v4/apis", definition("capped", capped_tps(CAPS[0])))
    opened = admin("POST", "/api/am/publisher/v4/apis", definition("open", None))
    ai = admin("POST", "/api/am/publisher/v4/apis", definition("ai", AI_TPS, ai=True))
    application = admin("POST", "/api/am/devportal/v3/applications", {"name": "soak"})["applicationId"]
    for api in (capped, opened, ai):
        admin("POST", "/api/am/devportal/v3/subscriptions",
              {"apiId": api["id"], "applicationId": application, "throttlingPolicy": "Unlimited"})
    clients = Clients(application)
    wrk_key = clients.new_key()  # wrk's key is never rotated

    lua = os.path.join(work, "statuses.lua")
    with open(lua, "w") as f:
        f.write(WRK_SCRIPT)
    wrk = subprocess.Popen(
        # A 10 s timeout: wrk's default 2 s measures a busy machine, not Sluice.
        ["wrk", "-t1", "-c4", f"-d{DURATION}s", "--timeout", "10s", "-s", lua,
         "-H", f"apikey: {wrk_key}",
         f"http://127.0.0.1:{PORTS['gateway']}/capped/v1/items"],
        stdout=subprocess.PIPE, text=True)
    threads = [threading.Thread(target=clients.plain, daemon=True),
               threading.Thread(target=clients.ai, args=(False,), daemon=True),
               threading.Thread(target=clients.ai, args=(True,), daemon=True),
               threading.Thread(target=clients.ai, args=(True,), daemon=True)]
    for thread in threads:
        thread.start()

    sampler = Sampler(pid)
    started = time.monotonic()
    changes = []  # (monotonic time, old cap, new cap)
    cap_index = 0
    next_change, next_rotation, next_sample = LIMIT_CHANGE_EVERY, KEY_ROTATION_EVERY, 0
    samples = []
    rotations = 0
    print(f"soak: {DURATION} s against {BIN} (pid {pid}); samples every {SAMPLE_EVERY} s", flush=True)
    print(f"{'t (s)':>6} {'RSS MiB':>8} {'fds':>5} {'python answers':>15} {'unexpected':>10}", flush=True)
    while True:
        elapsed = time.monotonic() - started
        if elapsed >= next_sample:
            rss, fds = sampler.rss_kib(), sampler.fds()
            samples.append((elapsed, rss, fds))
            with clients.lock:
                answered, unexpected = sum(clients.statuses.values()), sum(clients.unexpected.values())
            print(f"{elapsed:6.0f} {rss / 1024:8.1f} {fds:5d} {answered:15d} {unexpected:10d}", flush=True)
            next_sample += SAMPLE_EVERY
        if elapsed >= DURATION:
            break
        if elapsed >= next_change:
            old = CAPS[cap_index % 2]
            cap_index += 1
            new = CAPS[cap_index % 2]
            replaced = definition("capped", capped_tps(new))
            admin("PUT", f"/api/am/publisher/v4/apis/{capped['id']}", replaced)
            changes.append((time.time(), old, new))
            next_change += LIMIT_CHANGE_EVERY
        if elapsed >= next_rotation:
            clients.rotate_key()
            rotations += 1
            next_rotation += KEY_ROTATION_EVERY
        time.sleep(0.2)

    clients.stop.set()
    for thread in threads:
        thread.join(timeout=30)
    wrk_out, _ = wrk.communicate(timeout=60)
    return verdict(samples, clients, wrk_out, changes, rotations)


def verdict(samples, clients, wrk_out, changes, rotations):
    failures = []

    # Memory and file descriptors after the warm-up.
    steady = [s for s in samples if s[0] >= WARM_UP]
    if len(steady) >= 2:
        first, last = steady[0], steady[-1]
        peak_rss = max(s[1] for s in steady)
        growth = (last[1] - first[1]) / first[1]
        print(f"\nmemory: RSS {first[1] / 1024:.1f} MiB at {first[0]:.0f} s, "
              f"{last[1] / 1024:.1f} MiB at the end (peak {peak_rss / 1024:.1f} MiB, "
              f"growth {growth:+.1%})")
        print(f"file descriptors: {first[2]} at {first[0]:.0f} s, {last[2]} at the end, "
              f"range {min(s[2] for s in steady)}..{max(s[2] for s in steady)}")
        tail = [s for s in steady if s[0] >= DURATION * 2 / 3]
        if len(tail) >= 2:
            tail_growth = (tail[-1][1] - tail[0][1]) / tail[0][1]
            print(f"memory over the last third: {tail[0][1] / 1024:.1f} MiB at {tail[0][0]:.0f} s, "
                  f"{tail[-1][1] / 1024:.1f} MiB at the end ({tail_growth:+.1%})")
            if tail_growth > MAX_RSS_GROWTH:
                failures.append(f"RSS grew {tail_growth:+.1%} over the last third of the run")
        if last[2] - first[2] > MAX_FD_GROWTH:
            failures.append(f"file descriptors grew from {first[2]} to {last[2]}")

    # Answers.
    wrk_statuses = {int(m.group(1)): int(m.group(2))
                    for m in re.finditer(r"^status (\d+) (\d+)$", wrk_out, re.M)}
    requests = re.search(r"(\d+) requests in", wrk_out)
    print(f"\nwrk (capped API, 4 connections): {requests.group(1) if requests else '?'} requests, "
          f"statuses {dict(sorted(wrk_statuses.items()))}")
    wrk_unexpected = {s: n for s, n in wrk_statuses.items() if s not in (200, 503)}
    if wrk_unexpected:
        failures.append(f"wrk got statuses other than 200 and 503: {wrk_unexpected}")
    if re.search(r"Socket errors", wrk_out):
        failures.append("wrk: " + re.search(r"Socket errors.*", wrk_out).group(0))
    print("python clients:")
    for (what, status), count in sorted(clients.statuses.items()):
        print(f"  {what:14} {status}: {count}")
    if clients.unexpected:
        failures.append(f"unexpected answers: {dict(clients.unexpected)}")
    print(f"keys rotated: {rotations}; limit changes: {len(changes)}")

    # The limit in every window, from what the backend received.
    _, _, data = call(PORTS["mock"], "GET", "/__mock/stats")
    by_admission = json.loads(data)["by_admission"]
    windows = {}
    for stamp, count in by_admission.items():
        fields = dict(part.strip().split("=", 1) for part in stamp.split(";"))
        if fields.get("unit") == "SECOND" and fields.get("environment") == "production":
            windows[int(fields["window"])] = count
    over = []
    for window, count in windows.items():
        allowed = CAPS[0]
        for at, old, new in changes:
            if window - 1 <= at < window + 2:  # a change around this second: max(old, new)
                allowed = max(allowed, old, new)
        phase = [new for at, _, new in changes if at < window]
        if phase:
            allowed = max(allowed, phase[-1])
        if count > allowed:
            over.append((window, count, allowed))
    full = sum(1 for c in windows.values() if c in CAPS)
    print(f"\nwindows of the capped API (SECOND): {len(windows)}, "
          f"max received in one {max(windows.values()) if windows else 0}, "
          f"{full} filled exactly to a cap, {len(over)} over their limit")
    if over:
        failures.append(f"windows over their limit (window, received, limit): {over[:10]}")
    if not windows:
        failures.append("the backend saw no admitted request of the capped API")

    print("\nverdict: " + ("PASS" if not failures else "FAIL"))
    for failure in failures:
        print(f"  - {failure}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
