#!/usr/bin/env python3
"""Helpers of bench/compare.sh, one subcommand each (standard library only).

  free-ports N               print N free TCP ports on 127.0.0.1
  wrk-result ...             parse one wrk --latency output into a JSON line
  table RESULTS.jsonl        the comparison table: medians of the rounds
  hold ...                   open N keep-alive client connections, print the
                             resident memory of the given processes meanwhile
  publish ...                publish N APIs (limits, applications, keys)
                             through the admin REST API, timing it and
                             sampling the gateway's resident memory
  seed ...                   add APIs (cloned from one published through the
                             REST API) or one application, subscription and
                             key per API straight into a stopped Sluice's
                             SQLite store: publishing 10 000 through the REST
                             API takes hours (each write rebuilds everything)
  live-change ...            probe one API under load while its definition is
                             changed; print how long the change took to be
                             live and the longest gap between responses
"""

import argparse
import base64
import hashlib
import hmac
import http.client
import json
import multiprocessing
import os
import re
import secrets
import socket
import sqlite3
import statistics
import sys
import threading
import time
import uuid


# ---------------------------------------------------------------- utilities

def rss_kb(pids):
    """Sum of VmRSS (kB) of the given processes."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as status:
                for line in status:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def children(pid):
    """The process and its direct children (NGINX's master and workers)."""
    pids = [pid]
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            pids += [int(p) for p in f.read().split()]
    except FileNotFoundError:
        pass
    return pids


class Admin:
    """A keep-alive client of Sluice's admin REST API (HTTP Basic)."""

    def __init__(self, base, password):
        m = re.match(r"http://([^/:]+):(\d+)", base)
        self.host, self.port = m.group(1), int(m.group(2))
        token = base64.b64encode(f"admin:{password}".encode()).decode()
        self.headers = {"authorization": f"Basic {token}", "content-type": "application/json"}
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)

    def call(self, method, path, body=None):
        data = None if body is None else json.dumps(body)
        for attempt in range(2):
            try:
                self.conn.request(method, path, body=data, headers=self.headers)
                response = self.conn.getresponse()
                payload = response.read()
                break
            except (http.client.HTTPException, OSError):
                self.conn.close()
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                if attempt:
                    raise
        if response.status >= 300:
            raise RuntimeError(f"{method} {path}: {response.status} {payload[:300]!r}")
        return json.loads(payload) if payload else None


UNITS = ["SECOND", "MINUTE", "HOUR"]


def scale_limits(i):
    """The limits of the i-th API of the scale case: never triggering in the
    benchmark, but distinct per API, in every time unit."""
    return {"production": 1_000_000 + i, "productionTimeUnit": UNITS[i % 3],
            "sandbox": 1000 + i, "sandboxTimeUnit": "MINUTE"}


def api_definition(name, backend_url, max_tps):
    return {
        "name": name, "context": f"/{name}", "version": "v1",
        "endpointConfig": {"endpoint_type": "http",
                           "production_endpoints": {"url": backend_url}},
        "maxTps": max_tps,
    }


# ---------------------------------------------------------------- free-ports

def free_ports(args):
    sockets = []
    for _ in range(args.n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        sockets.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in sockets))
    for s in sockets:
        s.close()


# ---------------------------------------------------------------- wrk-result

def wrk_result(args):
    text = open(args.file).read()

    def latency_ms(percent):
        m = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
        return float(m.group(1)) * scale[m.group(2)] if m else None

    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    requests = int(total.group(1)) if total else 0
    read = re.search(r"requests in [\d.]+\w+, ([\d.]+)([KMGT]?B) read", text)
    read_bytes = float(read.group(1)) * 1024 ** "BKMGT".index(read.group(2)[0]) if read else 0.0

    def per_answer_us(before, after):
        """CPU time per answer (us) from two clock-tick readings."""
        return (after - before) / args.tick * 1e6 / requests if requests else None

    seconds = float(total.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1, "m": 60}[total.group(3)] if total else args.duration
    print(json.dumps({
        "round": args.round, "case": args.case,
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": latency_ms(50), "p99": latency_ms(99),
        "requests": requests,
        "seconds": seconds,
        "non2xx": int(non2xx.group(1)) if non2xx else 0,
        "bytes_per_answer": read_bytes / requests if requests else None,
        "socket_errors": sum(int(g) for g in errors.groups()) if errors else 0,
        "backend": args.backend,
        "backend_rps_whole_run": args.backend / seconds if seconds else 0.0,
        "backend_rps": args.window_count / args.window_seconds,
        "rss_peak_kb": args.rss or None,
        # CPU time per answer of the proxy under test (user, system) and of the mock.
        "proxy_user_us": None if args.no_proxy else per_answer_us(args.cpu[0], args.cpu[2]),
        "proxy_system_us": None if args.no_proxy else per_answer_us(args.cpu[1], args.cpu[3]),
        "mock_us": per_answer_us(sum(args.mock_cpu[:2]), sum(args.mock_cpu[2:])),
    }))


# ---------------------------------------------------------------- window-count

def window_count(args):
    """Requests the mock received over whole wall-clock seconds inside a run:
    a fixed one-second window admits up to the cap in each window it
    touches, so a count over the whole run (D seconds touch D + 1 windows)
    would overstate the rate. Read the count just after a second starts and
    again `seconds` later."""
    def count():
        conn = http.client.HTTPConnection(args.host, args.port, timeout=5)
        conn.request("GET", "/__mock/stats")
        value = json.loads(conn.getresponse().read())["requests"]
        conn.close()
        return value

    time.sleep(args.delay)
    start = int(time.time()) + 1 + args.margin
    time.sleep(max(0.0, start - time.time()))
    first = count()
    time.sleep(max(0.0, start + args.seconds - time.time()))
    last = count()
    print(last - first, args.seconds)


# ---------------------------------------------------------------- table

# Case name -> (group, proxy). Ratios compare a case with the same group's
# NGINX and HAProxy cases of the same round; the floor's refusals, with their
# answers under the cap.
def case_group(case):
    if case == "floor_refuse":
        return "cap", "floor"
    for proxy in ("nginx", "haproxy", "sluice", "floor"):
        if case.startswith(proxy + "_"):
            return case[len(proxy) + 1:], proxy
    return case, None


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def table(args):
    rows = [json.loads(line) for line in open(args.results) if line.strip()]
    by_round = {}
    for row in rows:
        by_round.setdefault(row["round"], {})[row["case"]] = row
    cases = []
    for row in rows:
        if row["case"] not in cases:
            cases.append(row["case"])
    order = {c: i for i, c in enumerate(args.order.split())} if args.order else {}
    cases.sort(key=lambda c: order.get(c, len(order)))

    def ratio(case, other, figure="rps"):
        out = []
        for results in by_round.values():
            if case in results and other in results and results[other][figure]:
                out.append(results[case][figure] / results[other][figure])
        return median(out)

    def fmt(value, spec, width):
        return f"{'-':>{width}}" if value is None else f"{value:>{width}{spec}}"

    header = (f"{'case':<24}{'req/s':>9}{'p50 ms':>8}{'p99 ms':>8}{'backend/s':>10}"
              f"{'refused/s':>10}{'x direct':>9}{'x nginx':>8}{'x haproxy':>10}")
    print(header)
    print("-" * len(header))
    summary = {}
    for case in cases:
        runs = [r[case] for r in by_round.values() if case in r]
        group, proxy = case_group(case)
        reference = "ai_direct" if case.startswith("ai_") else "direct"
        rps = median([r["rps"] for r in runs])
        p50 = median([r["p50"] for r in runs])
        p99 = median([r["p99"] for r in runs])
        backend = median([r["backend_rps"] for r in runs])
        refused = median([r["non2xx"] / r["seconds"] for r in runs])
        x_direct = ratio(case, reference) if case != reference else None
        x_nginx = ratio(case, f"nginx_{group}") if proxy and proxy != "nginx" else None
        x_haproxy = ratio(case, f"haproxy_{group}") if proxy and proxy != "haproxy" else None
        summary[case] = {"rps": rps, "p50": p50, "p99": p99, "backend_rps": backend,
                         "refused_rps": refused, "x_direct": x_direct, "x_nginx": x_nginx,
                         "x_haproxy": x_haproxy, "rounds": len(runs),
                         "rps_all": [round(r["rps"]) for r in runs],
                         "errors": sum(r["socket_errors"] for r in runs),
                         "proxy_user_us": median([r.get("proxy_user_us") for r in runs]),
                         "proxy_system_us": median([r.get("proxy_system_us") for r in runs]),
                         "mock_us": median([r.get("mock_us") for r in runs]),
                         "bytes": median([r.get("bytes_per_answer") for r in runs])}
        print(f"{case:<24}{fmt(rps, '.0f', 9)}{fmt(p50, '.2f', 8)}{fmt(p99, '.2f', 8)}"
              f"{fmt(backend, '.0f', 10)}{fmt(refused, '.0f', 10)}{fmt(x_direct, '.2f', 9)}"
              f"{fmt(x_nginx, '.2f', 8)}{fmt(x_haproxy, '.2f', 10)}")
    print()
    print("req/s of every round (the table shows the median):")
    for case in cases:
        extra = f"  socket errors: {summary[case]['errors']}" if summary[case]["errors"] else ""
        print(f"  {case:<24}{' '.join(str(v) for v in summary[case]['rps_all'])}{extra}")

    print()
    print("CPU time per answer, us (utime and stime from /proc, medians over the rounds),")
    print("and the bytes wrk read per answer (head and body):")
    print(f"  {'case':<24}{'user':>7}{'system':>8}{'total':>8}{'mock':>7}{'bytes':>7}")
    for case in cases:
        user, system = summary[case]["proxy_user_us"], summary[case]["proxy_system_us"]
        if user is None or system is None:
            continue
        print(f"  {case:<24}{user:>7.1f}{system:>8.1f}{user + system:>8.1f}{fmt(summary[case]['mock_us'], '.1f', 7)}"
              f"{fmt(summary[case]['bytes'], '.0f', 7)}")
    print_budgets(summary, args.cores)

    print()
    print("ratios of interest (medians of the per-round ratios):")
    pairs = [
        ("sluice_never", "sluice_nolimit", "limiter cost: Sluice never-triggering / Sluice no limit (goal >= 0.97)"),
        ("nginx_never", "nginx_nolimit", "NGINX never-triggering / NGINX no limit"),
        ("haproxy_never", "haproxy_nolimit", "HAProxy never-triggering / HAProxy no limit"),
        ("sluice_never", "nginx_never", "Sluice / NGINX, never-triggering limit (goal >= 1.1)"),
        ("sluice_never", "haproxy_never", "Sluice / HAProxy, never-triggering limit (goal >= 1.1)"),
        ("sluice_cap", "nginx_cap", "Sluice / NGINX, 1000/s cap (answers, mostly refusals)"),
        ("sluice_cap", "haproxy_cap", "Sluice / HAProxy, 1000/s cap (answers, mostly refusals)"),
        ("sluice_cap", "nginx_cap_alike", "Sluice / NGINX, 1000/s cap, NGINX answering as Sluice does"),
        ("sluice_cap", "haproxy_cap_alike", "Sluice / HAProxy, 1000/s cap, HAProxy answering as Sluice does"),
        ("floor_nolimit", "nginx_never", "floor of hyper and tokio, passing on / NGINX never-triggering"),
        ("floor_refuse", "nginx_cap", "floor of hyper and tokio, Sluice's 503 / NGINX 1000/s cap"),
        ("floor_refuse", "haproxy_cap", "floor of hyper and tokio, Sluice's 503 / HAProxy 1000/s cap"),
        ("sluice_never", "floor_nolimit", "Sluice never-triggering / the floor passing on"),
        ("sluice_cap", "floor_refuse", "Sluice 1000/s cap / the floor's copy of its 503"),
        ("redis_exact_never", "sluice_never", "Redis exact / local, never-triggering"),
        ("redis_leased_never", "sluice_never", "Redis leased / local, never-triggering (goal >= 0.8)"),
        ("ai_stream_tokens", "ai_stream_plain", "AI stream with token limit / without (goal >= 0.95)"),
        ("sluice_10k_apis", "sluice_never", "10 000 APIs / few APIs, never-triggering (goal >= 0.95)"),
    ]
    for case, other, label in pairs:
        value = ratio(case, other)
        if value is not None:
            print(f"  {label:<72}{value:.3f}")
    print()
    print("p99 latency ratios (medians of the per-round ratios; below 1 is better for Sluice):")
    name = {"sluice": "Sluice", "floor": "the floor", "nginx": "NGINX", "haproxy": "HAProxy"}
    for group, label in (("never", "never-triggering limit, flat out"),
                         ("paced", "never-triggering limit, paced (2 ms pauses)"),
                         ("cap", "1000/s cap")):
        for subject, other in (("sluice", "nginx"), ("sluice", "haproxy"), ("floor", "nginx")):
            value = ratio(f"{subject}_{group}", f"{other}_{group}", "p99")
            if value is not None:
                print(f"  {name[subject] + ' / ' + name[other] + ', ' + label:<72}{value:.3f}")
    if args.json:
        with open(args.json, "w") as out:
            json.dump(summary, out, indent=1)


def print_budgets(summary, cores):
    """What Sluice may spend per answer to reach a goal against another proxy.

    With every core busy (wrk, the mock and the proxy share them), one answer
    costs cores / (req/s) of CPU in all. At `goal` times the other proxy's
    req/s, with wrk's and the mock's share per answer unchanged, Sluice may
    spend cores / (goal x req/s) minus that share."""
    goals = [("never", 1.1), ("cap", 1.0)]
    lines = []
    for group, goal in goals:
        sluice = summary.get(f"sluice_{group}")
        for other in ("nginx", "haproxy"):
            theirs = summary.get(f"{other}_{group}")
            if not sluice or not theirs or not theirs["rps"] or theirs["proxy_user_us"] is None:
                continue
            their_cpu = theirs["proxy_user_us"] + theirs["proxy_system_us"]
            total = cores * 1e6 / theirs["rps"]
            budget = cores * 1e6 / (goal * theirs["rps"]) - (total - their_cpu)
            ours = sluice["proxy_user_us"] + sluice["proxy_system_us"]
            lines.append(f"  {group:<6} {goal:.1f} x {other:<8} budget {budget:5.1f} us; {other} spends {their_cpu:5.1f}"
                         f" ({theirs['proxy_system_us']:.1f} in the kernel), Sluice {ours:5.1f}"
                         f" ({sluice['proxy_system_us']:.1f} in the kernel)")
    if lines:
        print()
        print(f"CPU budget per answer for Sluice to meet a goal ({cores} busy cores; wrk's and the mock's share as in the other's run):")
        print("\n".join(lines))


# ---------------------------------------------------------------- hold

def hold(args):
    """Open N client connections, each after one request, and keep them."""
    m = re.match(r"http://([^/:]+):(\d+)(/.*)", args.url)
    host, port, path = m.group(1), int(m.group(2)), m.group(3)
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\napikey: {args.key}\r\n\r\n").encode()
    connections = []
    statuses = {}
    for _ in range(args.connections):
        s = socket.create_connection((host, port))
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += s.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        status = head.split(b" ", 2)[1].decode()
        statuses[status] = statuses.get(status, 0) + 1
        # Read the rest of the answer (content-length or chunked) so the
        # connection is idle and reusable, as a keep-alive client leaves it.
        length = re.search(rb"(?i)content-length:\s*(\d+)", head)
        if length:
            while len(body) < int(length.group(1)):
                body += s.recv(65536)
        else:
            while not body.endswith(b"0\r\n\r\n"):
                body += s.recv(65536)
        connections.append(s)
    time.sleep(args.settle)
    pids = [int(p) for p in args.pids.split(",")]
    print(json.dumps({"connections": len(connections), "statuses": statuses,
                      "rss_kb": rss_kb(pids)}))
    for s in connections:
        s.close()


# ---------------------------------------------------------------- publish

def publish(args):
    """Publish APIs with limits, then one application, subscription and key
    per API, sampling the gateway's memory before and after each part."""
    admin = Admin(args.admin, args.password)
    pid = args.pid
    report = {"apis": args.apis}
    time.sleep(1)
    report["rss_before_kb"] = rss_kb([pid])

    lock = threading.Lock()
    api_ids = [None] * args.apis

    def work(worker, job, count, threads):
        client = Admin(args.admin, args.password)
        for i in range(worker, count, threads):
            job(client, i)

    def run(job, count):
        threads = [threading.Thread(target=work, args=(w, job, count, args.threads))
                   for w in range(args.threads)]
        start = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return time.monotonic() - start

    progress = {"done": 0}

    def note(label, total):
        with lock:
            progress["done"] += 1
            if progress["done"] % 1000 == 0:
                print(f"    {label}: {progress['done']}/{total}", file=sys.stderr, flush=True)

    def create_api(client, i):
        api = client.call("POST", "/api/am/publisher/v4/apis",
                          api_definition(f"{args.prefix}{i}", args.backend, scale_limits(i)))
        api_ids[i] = api["id"]
        note("APIs", args.apis)

    # A tenth first, so that the growth per API is also measured as a slope,
    # past the one-off costs of the first writes (caches, allocator arenas).
    tenth = max(1, args.apis // 10)
    report["publish_seconds"] = run(create_api, tenth)
    time.sleep(1)
    report["rss_after_tenth_kb"] = rss_kb([pid])
    report["tenth"] = tenth
    rest = list(range(tenth, args.apis))
    report["publish_seconds"] += run(lambda client, k: create_api(client, rest[k]), len(rest))
    time.sleep(1)
    report["rss_after_apis_kb"] = rss_kb([pid])

    keys = [None] * args.apis
    progress["done"] = 0

    def create_key(client, i):
        app = client.call("POST", "/api/am/devportal/v3/applications", {"name": f"{args.prefix}app{i}"})
        client.call("POST", "/api/am/devportal/v3/subscriptions",
                    {"apiId": api_ids[i], "applicationId": app["applicationId"],
                     "throttlingPolicy": "Unlimited"})
        key = client.call("POST", f"/api/am/devportal/v3/applications/{app['applicationId']}"
                          "/api-keys/PRODUCTION/generate", {"validityPeriod": -1})
        keys[i] = key["apikey"]
        note("keys", args.apis)

    report["keys_seconds"] = run(create_key, args.apis)
    time.sleep(1)
    report["rss_after_keys_kb"] = rss_kb([pid])
    # What one write costs at this size: the last API's and a few more.
    timings = []
    for i in range(args.apis, args.apis + 5):
        start = time.monotonic()
        admin.call("POST", "/api/am/publisher/v4/apis",
                   api_definition(f"{args.prefix}extra{i}", args.backend, scale_limits(i)))
        timings.append(time.monotonic() - start)
    report["write_ms_at_size"] = statistics.median(timings) * 1000
    report["api_id"] = api_ids[0]
    report["key"] = keys[0]
    report["context"] = f"/{args.prefix}0/v1"
    print(json.dumps(report))


# ---------------------------------------------------------------- seed

def seed(args):
    """Write APIs, or applications + subscriptions + keys, into a stopped
    Sluice's SQLite store, exactly as the REST API stores them: each API is
    the definition of `{prefix}0` (published through the REST API, so valid)
    with its own id, name, context and limits; each key is digested with the
    pepper the gateway was started with (SLUICE_KEY_PEPPER)."""
    db = sqlite3.connect(args.db)
    now = int(time.time() * 1000)
    template = db.execute("SELECT definition FROM apis WHERE context = ?",
                          (f"/{args.prefix}0",)).fetchone()
    if template is None:
        sys.exit(f"seed: no API /{args.prefix}0 in {args.db}")
    template = json.loads(template[0])
    with db:
        if args.what == "apis":
            for i in range(args.first, args.last):
                definition = dict(template)
                api_id = str(uuid.uuid4())
                definition.update(id=api_id, name=f"{args.prefix}{i}", context=f"/{args.prefix}{i}",
                                  maxTps=scale_limits(i))
                db.execute("INSERT INTO apis (id, context, version, definition, created_at, updated_at)"
                           " VALUES (?, ?, ?, ?, ?, ?)",
                           (api_id, f"/{args.prefix}{i}", template["version"],
                            json.dumps(definition, separators=(",", ":")), now, now))
        else:
            pepper = args.pepper.encode()
            for i in range(args.first, args.last):
                (api_id,) = db.execute("SELECT id FROM apis WHERE context = ?",
                                       (f"/{args.prefix}{i}",)).fetchone()
                app_id = str(uuid.uuid4())
                name = f"{args.prefix}app{i}"
                db.execute("INSERT INTO applications (id, name, definition, created_at) VALUES (?, ?, ?, ?)",
                           (app_id, name, json.dumps({"applicationId": app_id, "name": name},
                                                     separators=(",", ":")), now))
                db.execute("INSERT INTO subscriptions (id, api_id, application_id, throttling_policy, created_at)"
                           " VALUES (?, ?, ?, 'Unlimited', ?)", (str(uuid.uuid4()), api_id, app_id, now))
                key_id = secrets.token_hex(8)
                key = f"slk_{key_id}_{secrets.token_urlsafe(32)}"
                digest = hmac.new(pepper, key.encode(), hashlib.sha256).digest()
                db.execute("INSERT INTO api_keys (key_id, application_id, key_type, digest, created_at,"
                           " expires_at, revoked) VALUES (?, ?, 'PRODUCTION', ?, ?, NULL, 0)",
                           (key_id, app_id, digest, now))
        db.execute("UPDATE revision SET value = value + 1")
    counts = {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("apis", "applications", "subscriptions", "api_keys")}
    print(json.dumps(counts))


# ---------------------------------------------------------------- live-change

def live_change_client(host, port, context, key, marker, stop, results):
    """One probing client of `live_change`, in a process of its own: Python
    threads would share one interpreter lock, whose hand-overs (every 5 ms)
    would delay the PUT and the probes' timestamps by more than Sluice
    takes to apply the change."""
    conn = http.client.HTTPConnection(host, port, timeout=10)
    headers = {"apikey": key}
    samples, failures = [], []  # (answered, through the new definition, sent)
    while not stop.is_set():
        sent = time.monotonic()
        try:
            conn.request("GET", f"{context}/x", headers=headers)
            response = conn.getresponse()
            body = response.read()
        except (http.client.HTTPException, OSError) as error:
            failures.append(repr(error))
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=10)
            continue
        if response.status != 200:
            failures.append(response.status)
        samples.append((time.monotonic(), marker.encode() in body, sent))
    results.put((samples, failures))


def live_change(args):
    """Clients on keep-alive connections call one API back to back; after
    `--before` seconds its production endpoint is changed (GET, edit, PUT).
    The mock echoes the path it was called with, so each answer tells whether
    it went through the old or the new definition. Each client is a process
    of its own; time.monotonic() is the same clock in all of them."""
    m = re.match(r"http://([^/:]+):(\d+)", args.gateway)
    host, port = m.group(1), int(m.group(2))
    stop = multiprocessing.Event()
    results = multiprocessing.Queue()
    clients = [multiprocessing.Process(target=live_change_client,
                                       args=(host, port, args.context, args.key, args.marker, stop, results))
               for _ in range(args.clients)]
    for c in clients:
        c.start()
    time.sleep(args.before)

    admin = Admin(args.admin, args.password)
    path = f"/api/am/publisher/v4/apis/{args.api_id}"
    definition = admin.call("GET", path)
    definition["endpointConfig"]["production_endpoints"]["url"] = args.new_url
    put_start = time.monotonic()
    admin.call("PUT", path, definition)
    put_end = time.monotonic()
    time.sleep(args.after)
    stop.set()
    samples, failures = [], []
    for _ in clients:
        per, failed = results.get()
        samples.append(per)
        failures.extend(failed)
    for c in clients:
        c.join()

    every = sorted(s for per in samples for s in per)
    first_new = next((t for t, new, _ in every if new and t >= put_start), None)
    # Requests sent after the PUT was answered must all see the new definition.
    old_after_put = sum(1 for _, new, sent in every if not new and sent > put_end)

    def longest_gap(start, end):
        # Per connection and over all of them: the longest time without an answer.
        worst_any = max((b[0] - a[0] for a, b in zip(every, every[1:]) if a[0] >= start and b[0] <= end),
                        default=None)
        worst_one = None
        for per in samples:
            for (a, _, _), (b, _, _) in zip(per, per[1:]):
                if a >= start and b <= end:
                    gap = b - a
                    worst_one = gap if worst_one is None or gap > worst_one else worst_one
        return worst_any, worst_one

    quiet = longest_gap(put_start - args.before + 0.5, put_start)
    during = longest_gap(put_start - 0.001, put_end + 0.5)
    print(json.dumps({
        "responses": len(every),
        "rate_per_s": len(every) / (args.before + args.after + (put_end - put_start)),
        "put_ms": (put_end - put_start) * 1000,
        "first_new_answer_ms": None if first_new is None else (first_new - put_start) * 1000,
        "old_answers_sent_after_put_returned": old_after_put,
        "gap_any_before_ms": quiet[0] * 1000 if quiet[0] else None,
        "gap_one_before_ms": quiet[1] * 1000 if quiet[1] else None,
        "gap_any_during_ms": during[0] * 1000 if during[0] else None,
        "gap_one_during_ms": during[1] * 1000 if during[1] else None,
        "failures": len(failures),
        "failure_kinds": sorted({str(f) for f in failures})[:5],
    }))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("free-ports")
    p.add_argument("n", type=int)
    p.set_defaults(func=free_ports)

    p = sub.add_parser("wrk-result")
    p.add_argument("--round", type=int, required=True)
    p.add_argument("--case", required=True)
    p.add_argument("--file", required=True)
    p.add_argument("--backend", type=int, required=True, help="requests the backend received")
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--rss", type=int, default=0, help="peak VmRSS in kB, when sampled")
    p.add_argument("--window-count", type=int, required=True,
                   help="requests the backend received over --window-seconds whole seconds")
    p.add_argument("--window-seconds", type=int, required=True)
    p.add_argument("--cpu", type=int, nargs=4, default=[0, 0, 0, 0],
                   help="the proxy's user and system clock ticks before, then after")
    p.add_argument("--mock-cpu", type=int, nargs=4, default=[0, 0, 0, 0],
                   help="the mock's user and system clock ticks before, then after")
    p.add_argument("--tick", type=int, default=100, help="clock ticks per second")
    p.add_argument("--no-proxy", action="store_true", help="no proxy in this case (direct)")
    p.set_defaults(func=wrk_result)

    p = sub.add_parser("window-count")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--seconds", type=int, required=True)
    p.add_argument("--delay", type=float, default=0.1, help="let the load start first")
    p.add_argument("--margin", type=float, default=0.05, help="after the second starts")
    p.set_defaults(func=window_count)

    p = sub.add_parser("table")
    p.add_argument("results")
    p.add_argument("--order", default="")
    p.add_argument("--json")
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="cores the benchmark ran on")
    p.set_defaults(func=table)

    p = sub.add_parser("hold")
    p.add_argument("--url", required=True)
    p.add_argument("--key", default="")
    p.add_argument("--connections", type=int, default=1000)
    p.add_argument("--pids", required=True, help="comma-separated pids whose VmRSS is summed")
    p.add_argument("--settle", type=float, default=1.0)
    p.set_defaults(func=hold)

    p = sub.add_parser("children")
    p.add_argument("pid", type=int)
    p.set_defaults(func=lambda a: print(",".join(str(x) for x in children(a.pid))))

    p = sub.add_parser("publish")
    p.add_argument("--admin", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--backend", required=True)
    p.add_argument("--apis", type=int, required=True)
    p.add_argument("--pid", type=int, required=True)
    p.add_argument("--prefix", default="scale")
    p.add_argument("--threads", type=int, default=4)
    p.set_defaults(func=publish)

    p = sub.add_parser("seed")
    p.add_argument("--db", required=True)
    p.add_argument("--what", choices=["apis", "keys"], required=True)
    p.add_argument("--first", type=int, required=True)
    p.add_argument("--last", type=int, required=True, help="exclusive")
    p.add_argument("--prefix", default="scale")
    p.add_argument("--pepper", default="")
    p.set_defaults(func=seed)

    p = sub.add_parser("live-change")
    p.add_argument("--admin", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--gateway", required=True)
    p.add_argument("--api-id", required=True)
    p.add_argument("--context", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--new-url", required=True)
    p.add_argument("--marker", required=True, help="text in the answer that shows the new definition")
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--before", type=float, default=3.0)
    p.add_argument("--after", type=float, default=2.0)
    p.set_defaults(func=live_change)

    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
