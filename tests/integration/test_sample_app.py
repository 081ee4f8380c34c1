"""The sample platform's images (tools/app-images.sh) run as the demo runs them.

Real containers on the local engine: ``webstack/redis:trixie`` and ``webstack/sample-api:v1/v2/v3``
on a private Docker network, the API published on 127.0.0.1 only (``-p 127.0.0.1::5000``). What a
user of the images relies on is checked from outside: /health and its Docker health state, items
kept in Redis and shared by the blue and green containers, JSON log lines in combined.log, and a
SIGTERM that lets the in-flight request finish and exits within a few seconds.

The images are built (or found up to date) by ``tools/app-images.sh api redis`` at the start.
Everything created is named ``sample-app-test-<random>`` and removed afterwards.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
API = "webstack/sample-api"
REDIS = "webstack/redis:trixie"


def docker(*args: str, check: bool = True, timeout: float = 120) -> str:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout.strip()


def http(method: str, url: str, body: dict | None = None, timeout: float = 10) -> tuple[int, dict, dict]:
    """(status, JSON body, headers) of one request; HTTP errors are answers too."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as res:
            return res.status, json.loads(res.read() or b"null"), dict(res.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null"), dict(err.headers)


def wait_for(what: str, probe: Callable[[], object], timeout: float = 30, interval: float = 0.3) -> object:
    """Call ``probe`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (OSError, urllib.error.URLError, json.JSONDecodeError) as err:
            last = err
        else:
            if last:
                return last
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


@dataclass
class Api:
    name: str
    url: str

    def get(self, path: str, timeout: float = 10) -> tuple[int, dict, dict]:
        return http("GET", self.url + path, timeout=timeout)

    def post(self, path: str, body: dict) -> tuple[int, dict, dict]:
        return http("POST", self.url + path, body)

    def health_status(self) -> str:
        return docker("inspect", "-f", "{{ .State.Health.Status }}", self.name)


@pytest.fixture(scope="module")
def images() -> None:
    """Build the images, or find them up to date; a failed build fails the tests."""
    proc = subprocess.run(
        [str(REPO_ROOT / "tools" / "app-images.sh"), "api", "redis"],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    assert proc.returncode == 0, f"tools/app-images.sh failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="module")
def prefix() -> str:
    return f"sample-app-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def network(images: None, prefix: str) -> Iterator[str]:
    name = f"{prefix}-net"
    docker("network", "create", name)
    yield name
    docker("network", "rm", name, check=False)


@pytest.fixture(scope="module")
def containers(prefix: str) -> Iterator[list[str]]:
    """Names of the containers the tests start; all removed at the end."""
    names: list[str] = []
    yield names
    if names:
        docker("rm", "-f", "-v", *names, check=False)


def start_redis(network: str, name: str, containers: list[str]) -> str:
    containers.append(name)
    docker("run", "-d", "--name", name, "--network", network, "--network-alias", name, REDIS)
    wait_for(
        f"{name} to answer PING",
        lambda: docker("exec", name, "redis-cli", "ping", check=False) == "PONG",
    )
    return name


@pytest.fixture(scope="module")
def redis(network: str, prefix: str, containers: list[str]) -> str:
    return start_redis(network, f"{prefix}-redis", containers)


@pytest.fixture(scope="module")
def run_api(network: str, prefix: str, containers: list[str]) -> Callable[..., Api]:
    def run(version: str, color: str, redis_host: str, *extra: str, ready: bool = True) -> Api:
        name = f"{prefix}-api-{version}-{color}-{uuid.uuid4().hex[:4]}"
        containers.append(name)
        docker(
            "run", "-d", "--name", name, "--network", network,
            "-p", "127.0.0.1::5000",
            "-e", f"COLOR={color}",
            "-e", f"REDIS_URL=redis://{redis_host}:6379/0",
            *extra,
            f"{API}:{version}",
        )  # fmt: skip
        port = docker("port", name, "5000/tcp").splitlines()[0].rsplit(":", 1)[1]
        api = Api(name=name, url=f"http://127.0.0.1:{port}")
        if ready:
            # Started means answering HTTP, whatever /health says.
            wait_for(f"{name} to answer /api/version", lambda: api.get("/api/version")[0] == 200, timeout=60)
        return api

    return run


def test_v1_is_healthy_and_reports_its_version(run_api: Callable[..., Api], redis: str) -> None:
    api = run_api("v1", "blue", redis, "--health-interval=1s")
    _, body, _ = wait_for(
        "v1 /health to say redis ok",
        lambda: (r := api.get("/health"))[0] == 200 and r[1].get("redis") == "ok" and r,
    )
    assert body == {"status": "ok", "version": "v1", "color": "blue", "redis": "ok"}
    assert api.get("/api/version")[1]["version"] == "v1"
    # The image's own HEALTHCHECK (curl on /health) turns it healthy.
    wait_for("docker to report v1 healthy", lambda: api.health_status() == "healthy")
    labels = json.loads(docker("image", "inspect", "-f", "{{ json .Config.Labels }}", f"{API}:v1"))
    assert labels["org.opencontainers.image.version"] == "v1"
    # Not root, and tini is PID 1 so SIGTERM reaches node.
    assert docker("exec", api.name, "id", "-u") == "10001"
    assert docker("exec", api.name, "cat", "/proc/1/comm") == "tini"


def test_v3_starts_but_never_passes_health(run_api: Callable[..., Api], redis: str) -> None:
    api = run_api("v3", "green", redis, "--health-interval=1s", "--health-retries=2")
    assert api.get("/api/version")[1]["version"] == "v3"
    deadline = time.monotonic() + 4
    seen = 0
    while time.monotonic() < deadline:
        status, body, _ = api.get("/health")
        assert status == 503, f"v3 /health answered {status}: {body}"
        assert body["status"] == "broken"
        assert body["version"] == "v3"
        assert body["reason"]
        seen += 1
        time.sleep(0.4)
    assert seen >= 5
    wait_for("docker to report v3 unhealthy", lambda: api.health_status() == "unhealthy", timeout=30)


def test_items_are_kept_in_redis_and_shared_by_blue_and_green(run_api: Callable[..., Api], redis: str) -> None:
    blue = run_api("v1", "blue", redis)
    green = run_api("v2", "green", redis)
    name = f"item-{uuid.uuid4().hex[:8]}"
    status, item, _ = blue.post("/api/items", {"name": name})
    assert status == 201, item
    assert item["name"] == name
    assert item["version"] == "v1"
    assert item["color"] == "blue"
    for api in (blue, green):
        status, body, _ = api.get("/api/items")
        assert status == 200
        assert item in body["items"], f"{api.name} does not list {item}"
    # Bad input is refused and not stored.
    for bad in ({}, {"name": ""}, {"name": 7}, {"name": "x" * 101}):
        status, body, _ = green.post("/api/items", bad)
        assert status == 400, (bad, body)
    names = [i["name"] for i in green.get("/api/items")[1]["items"]]
    assert names.count(name) == 1
    assert "" not in names


def test_logs_are_json_lines_in_combined_log(run_api: Callable[..., Api], redis: str) -> None:
    api = run_api("v1", "blue", redis)
    api.get("/api/items")
    assert api.get("/no-such-route")[0] == 404

    def lines() -> list[dict]:
        raw = docker("exec", api.name, "cat", "/var/log/app/combined.log")
        return [json.loads(line) for line in raw.splitlines() if line.strip()]

    entries = wait_for(
        "the 404 request to be logged",
        lambda: (e := lines()) and any(x.get("status") == 404 for x in e) and e,
    )
    for entry in entries:
        assert isinstance(entry["level"], str)
        assert isinstance(entry["message"], str)
        assert entry["timestamp"].endswith("Z"), entry
        assert entry["version"] == "v1"
    messages = [e["message"] for e in entries]
    assert "listening" in messages
    assert any(e["message"] == "request" and e.get("path") == "/api/items" for e in entries)
    # error.log exists beside it and holds errors only.
    errors = docker("exec", api.name, "cat", "/var/log/app/error.log")
    assert all(json.loads(line)["level"] == "error" for line in errors.splitlines() if line.strip())
    # The same JSON goes to stdout, i.e. `docker logs`.
    first = docker("logs", api.name).splitlines()[0]
    assert json.loads(first)["message"] in {"listening", "redis ready"}


def test_sigterm_finishes_in_flight_request_then_exits(run_api: Callable[..., Api], redis: str) -> None:
    api = run_api("v1", "blue", redis)
    result: dict[str, object] = {}

    def slow() -> None:
        try:
            result["answer"] = api.get("/api/slow?ms=2500", timeout=15)
        except OSError as err:  # reset or refused: the drain did not wait
            result["error"] = err

    worker = threading.Thread(target=slow)
    worker.start()
    time.sleep(0.7)  # the request is in flight
    sent = time.monotonic()
    docker("kill", "--signal", "TERM", api.name)
    exit_code = docker("wait", api.name, timeout=30)
    exited = time.monotonic() - sent
    worker.join(timeout=15)

    assert "answer" in result, f"the in-flight request failed: {result.get('error')!r}"
    status, body, headers = result["answer"]  # type: ignore[misc]
    assert status == 200, body
    assert body["slept_ms"] == 2500
    assert headers.get("Connection", "").lower() == "close"
    assert exit_code == "0"
    assert exited < 6, f"exit took {exited:.1f}s after SIGTERM"
    assert exited > 1.2, f"exit after {exited:.1f}s: the in-flight request was not waited for"
    messages = [json.loads(line)["message"] for line in docker("logs", api.name).splitlines() if line.startswith("{")]
    assert "shutdown started" in messages
    assert messages[-1] == "shutdown complete"


def test_health_stays_up_without_redis_and_recovers(
    run_api: Callable[..., Api], network: str, prefix: str, containers: list[str]
) -> None:
    late = f"{prefix}-redis-late"
    api = run_api("v1", "blue", late)
    status, body, _ = api.get("/health")
    assert status == 200
    assert body["redis"] == "unavailable"
    assert api.get("/api/items")[0] == 503
    assert api.post("/api/items", {"name": "lost"})[0] == 503
    start_redis(network, late, containers)
    wait_for(
        "the API to reconnect to redis",
        lambda: api.get("/health")[1].get("redis") == "ok",
        timeout=30,
    )
    assert api.post("/api/items", {"name": "after-reconnect"})[0] == 201
