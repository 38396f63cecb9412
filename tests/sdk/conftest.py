"""Fixtures of the SDK suite: the real `sluice` binary and its mock backend
(`sluice mock-backend`), each started once per session on a free 127.0.0.1
port, and helpers named after the domain: publish an AI API, subscribe an
application to it, read the tokens Sluice counted from `/metrics`.

The binary is `target/debug/sluice` of this repository (build it first with
`cargo build --bin sluice`), or the one `SLUICE_BIN` names. scripts/test
builds it, installs tests/sdk/requirements.txt into target/sdk-venv and runs
this suite.
"""

import base64
import itertools
import json
import os
import pathlib
import re
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "sdk-suite-admin-password"
PUBLISHER = "/api/am/publisher/v4"
DEVPORTAL = "/api/am/devportal/v3"
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")

# The SDKs read their keys and base URLs from the environment too: nothing of
# the machine running the suite may reach them. Loopback bypasses any proxy.
for _name in list(os.environ):
    if _name.startswith(("OPENAI_", "ANTHROPIC_")):
        del os.environ[_name]
os.environ["NO_PROXY"] = "127.0.0.1,localhost"


def sluice_binary():
    binary = pathlib.Path(os.environ.get("SLUICE_BIN", REPO / "target" / "debug" / "sluice"))
    if not binary.is_file():
        pytest.exit(f"{binary} is missing: build it with `cargo build --bin sluice`", returncode=2)
    return binary


class Process:
    """A child process whose output lines (stdout and stderr) are collected."""

    def __init__(self, args, env=None):
        self.popen = subprocess.Popen(
            [str(a) for a in args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "NO_COLOR": "1", **(env or {})},
        )
        self.lines = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.popen.stdout:
            with self._changed:
                self.lines.append(ANSI_ESCAPE.sub("", line.rstrip("\n")))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, pattern, timeout=30.0):
        """The first match of `pattern` in an output line, waiting for it."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    match = regex.search(line)
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self.popen.poll() is not None:
                    output = "\n".join(self.lines)
                    raise RuntimeError(f"no line matching {pattern!r}:\n{output}")
                self._changed.wait(min(remaining, 0.1))

    def stop(self):
        self.popen.terminate()
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait()


class Sluice:
    """A running Sluice, driven through its admin REST API and `/metrics`."""

    _names = itertools.count()

    def __init__(self, gateway, admin):
        self.gateway = f"http://{gateway}"
        self.admin_url = f"http://{admin}"

    def admin(self, method, path, body=None):
        """Send an admin request; its status and JSON answer."""
        credentials = base64.b64encode(f"admin:{ADMIN_PASSWORD}".encode()).decode()
        request = urllib.request.Request(
            self.admin_url + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Basic {credentials}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        return status, (json.loads(text) if text.startswith(("{", "[")) else text)

    def publish_ai_api(self, provider, backend, *, credential=None, options=None, max_tps=None):
        """Publish an AI API whose backend speaks `provider` (WSO2's
        `llmProviderName`), with the endpoint credential `(header, value)`,
        API-level `x-sluice` options and `maxTps`; returns the API with its
        `route`."""
        context = f"{provider.lower()}-{next(self._names)}"
        endpoint_config = {
            "endpoint_type": "http",
            "production_endpoints": {"url": backend},
            "sandbox_endpoints": {"url": backend},
        }
        if credential:
            header, value = credential
            endpoint_config["endpoint_security"] = {
                "production": {
                    "enabled": True,
                    "type": "apikey",
                    "apiKeyIdentifier": header,
                    "apiKeyValue": value,
                }
            }
        definition = {
            "name": f"{context} API",
            "context": f"/{context}",
            "version": "v1",
            "type": "HTTP",
            "securityScheme": ["api_key"],
            "endpointConfig": endpoint_config,
            "subtypeConfiguration": {
                "subtype": "AIAPI",
                # A JSON string, as WSO2 writes it.
                "configuration": json.dumps({"llmProviderName": provider}),
            },
        }
        if options:
            definition["x-sluice"] = options
        if max_tps:
            definition["maxTps"] = max_tps
        status, api = self.admin("POST", f"{PUBLISHER}/apis", definition)
        assert status == 201, api
        api["route"] = f"/{context}/v1"
        return api

    def subscribe(self, api):
        """A new application subscribed to `api`; its production key."""
        status, application = self.admin(
            "POST",
            f"{DEVPORTAL}/applications",
            {"name": f"sdk-app-{next(self._names)}", "throttlingPolicy": "Unlimited"},
        )
        assert status == 201, application
        application_id = application["applicationId"]
        status, subscription = self.admin(
            "POST",
            f"{DEVPORTAL}/subscriptions",
            {"apiId": api["id"], "applicationId": application_id, "throttlingPolicy": "Unlimited"},
        )
        assert status == 201, subscription
        status, key = self.admin(
            "POST",
            f"{DEVPORTAL}/applications/{application_id}/api-keys/PRODUCTION/generate",
            {"validityPeriod": -1},
        )
        assert status == 200, key
        return key["apikey"]

    def counted(self, api, source="reported", expect=None):
        """The tokens Sluice counted for `api` in production from `source`
        (`reported` or `estimated`), as {dimension: count}. With `expect`,
        scrape again for up to 5 s until they equal it: an SDK may stop
        reading a stream at its last event, a moment before the gateway
        settles it."""
        deadline = time.monotonic() + 5
        while True:
            counts = self._counted_once(api, source)
            if expect is None or counts == expect or time.monotonic() > deadline:
                return counts
            time.sleep(0.02)

    def _counted_once(self, api, source):
        status, text = self.admin("GET", "/metrics")
        assert status == 200, text
        counts = {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        for line in text.splitlines():
            if not line.startswith("sluice_backend_tokens_total{"):
                continue
            labels_text, value = line[len("sluice_backend_tokens_total{") :].rsplit("} ", 1)
            labels = dict(re.findall(r'(\w+)="([^"]*)"', labels_text))
            if (
                labels.get("api_id") == api["id"]
                and labels.get("environment") == "production"
                and labels.get("source") == source
            ):
                counts[labels["dimension"]] = int(float(value))
        return counts


def mock_prompt_tokens(*texts):
    """The mock's usage rule for prompt tokens: ceil(bytes / 4) + 4 per
    message (docs/mock-backend.md)."""
    return sum(-(-len(text.encode()) // 4) + 4 for text in texts)


@pytest.fixture(scope="session")
def mock_backend():
    """`sluice mock-backend` on a free port: its base URL."""
    process = Process([sluice_binary(), "mock-backend", "--listen", "127.0.0.1:0"])
    try:
        match = process.wait_for(r"mock backend listening.*addr=(\S+)")
        yield f"http://{match.group(1)}"
    finally:
        process.stop()


@pytest.fixture(scope="session")
def sluice():
    """`sluice serve` on free ports over a temporary data directory."""
    with tempfile.TemporaryDirectory(prefix="sluice-sdk-") as data_dir:
        config = pathlib.Path(data_dir) / "sluice.toml"
        config.write_text(
            "[gateway]\n"
            'listen = "127.0.0.1:0"\n'
            "[admin]\n"
            'listen = "127.0.0.1:0"\n'
            "[store]\n"
            f'url = "sqlite://{data_dir}/sluice.db"\n'
        )
        process = Process(
            [sluice_binary(), "serve", "--config", config],
            env={"SLUICE_ADMIN_PASSWORD": ADMIN_PASSWORD},
        )
        try:
            match = process.wait_for(r"Sluice gateway on http://(\S+), admin API on http://(\S+)")
            yield Sluice(match.group(1), match.group(2))
        finally:
            process.stop()
