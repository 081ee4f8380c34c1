"""Shared fixtures of the integration tests: real services on 127.0.0.1, started once per session.

* ``moto_endpoint``: a moto server (``python -m moto.server``) on a free port. While it runs, the
  environment holds fake AWS credentials and the region ``us-east-1`` (and no profile), so boto3
  and Ansible's AWS modules started from the tests can never reach a real account. It yields the
  endpoint URL; pass it as ``endpoint_url`` (``module_defaults: group/webstack.deploy.aws`` does
  that for this collection's modules, ``group/aws`` for amazon.aws / community.aws ones).
* ``aws_client``: factory of boto3 clients bound to that endpoint.
* ``registry``: a real Distribution registry (Debian package ``docker-registry``) on a free port,
  storage in a temporary directory, htpasswd auth accepting exactly the credentials of moto's
  ECR authorization token (user ``AWS``), so pushes go through the same login a real ECR needs.
  ``start_registry`` starts more (e.g. one refusing that token).
* ``run_play``: runs a list of tasks on localhost with ``ansible-playbook`` (the JSON callback)
  and returns the per-task results.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
}
UNSET = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_in(ports: range, host: str = "127.0.0.1") -> int:
    """A port of ``ports`` that nothing on ``host`` listens on now (tests given a port range use it)."""
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports.start}-{ports.stop - 1}")


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 30.0) -> None:
    """Wait until ``url`` answers any HTTP status; fail with the service's log if it died or never did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{proc.args[0]} exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:
            return  # answered, e.g. 401 from an authenticating registry
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    pytest.fail(f"{url} did not answer within {timeout}s:\n{log.read_text()[-3000:]}")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a moto server on 127.0.0.1, with fake AWS credentials and region in the environment."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with pytest.MonkeyPatch.context() as mp:
        for key, value in FAKE_CREDENTIALS.items():
            mp.setenv(key, value)
        for key in UNSET:
            mp.delenv(key, raising=False)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(f"{url}/moto-api/", proc, log)
            yield url
        finally:
            stop(proc)


@pytest.fixture(scope="session")
def aws_client(moto_endpoint: str) -> Callable:
    """``aws_client("ecr")``: a boto3 client of the moto server."""
    import boto3

    def make(service: str):
        return boto3.client(service, endpoint_url=moto_endpoint, region_name=REGION)

    return make


def bcrypt_hash(password: str) -> str:
    """Distribution's htpasswd accepts bcrypt only; glibc's crypt (libxcrypt) makes it, else htpasswd(1)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import crypt  # removed in Python 3.13

        # cost 4 (16 rounds): the registry checks the hash on every request of a push
        hashed = crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
        if hashed and hashed.startswith("$2"):
            return hashed
    except ImportError:
        pass
    if shutil.which("htpasswd"):
        out = subprocess.run(["htpasswd", "-nbB", "-C", "4", "x", password], check=True, capture_output=True, text=True)
        return out.stdout.strip().split(":", 1)[1]
    pytest.fail("no bcrypt implementation: need Python's crypt module (< 3.13) or htpasswd (apache2-utils)")


@dataclass
class Registry:
    url: str  # http://127.0.0.1:<port>, the registry_url of ecr_push
    host: str  # 127.0.0.1:<port>, the prefix of image names
    root: Path  # storage directory
    user: str
    password: str

    def manifest_digest(self, repository: str, tag: str) -> str | None:
        """What the registry says the tag holds (None when it does not exist)."""
        request = urllib.request.Request(
            f"{self.url}/v2/{repository}/manifests/{tag}",
            method="HEAD",
            headers={
                "Accept": "application/vnd.docker.distribution.manifest.v2+json",
                "Authorization": "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode(),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.headers["Docker-Content-Digest"]
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise


@pytest.fixture(scope="session")
def start_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[[str, str], Registry]]:
    """``start_registry(user, password)``: a Distribution registry accepting only that user and password."""
    binary = shutil.which("docker-registry") or shutil.which("registry")
    if not binary:
        pytest.fail(
            "the Distribution registry is not installed: apt-get install docker-registry (tools/apt-install.sh)"
        )
    procs: list[subprocess.Popen] = []

    def start(user: str, password: str) -> Registry:
        root = tmp_path_factory.mktemp("registry")
        port = free_port()
        (root / "htpasswd").write_text(f"{user}:{bcrypt_hash(password)}\n")
        (root / "config.yml").write_text(
            json.dumps(  # JSON is YAML; no PyYAML needed
                {
                    "version": 0.1,
                    "log": {"level": "warn", "accesslog": {"disabled": True}},
                    "storage": {"filesystem": {"rootdirectory": str(root / "data")}, "delete": {"enabled": True}},
                    "http": {"addr": f"127.0.0.1:{port}", "headers": {"X-Content-Type-Options": ["nosniff"]}},
                    "auth": {"htpasswd": {"realm": "webstack-test", "path": str(root / "htpasswd")}},
                }
            )
        )
        log = root / "registry.log"
        with log.open("wb") as out:
            proc = subprocess.Popen([binary, "serve", str(root / "config.yml")], stdout=out, stderr=subprocess.STDOUT)
        procs.append(proc)
        wait_http(f"http://127.0.0.1:{port}/v2/", proc, log)
        return Registry(f"http://127.0.0.1:{port}", f"127.0.0.1:{port}", root, user, password)

    yield start
    for proc in procs:
        stop(proc)


@pytest.fixture(scope="session")
def ecr_token(aws_client: Callable) -> tuple[str, str]:
    """(user, password) of moto's ECR authorization token."""
    data = aws_client("ecr").get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(data["authorizationToken"]).decode().split(":", 1)
    return user, password


@pytest.fixture(scope="session")
def registry(start_registry: Callable[[str, str], Registry], ecr_token: tuple[str, str]) -> Registry:
    """A registry that accepts the ECR token moto hands out, as ECR's registry accepts its own tokens."""
    return start_registry(*ecr_token)


@pytest.fixture(scope="session")
def docker_client() -> Iterator:
    docker = pytest.importorskip("docker")
    client = docker.from_env()
    try:
        client.ping()
    except docker.errors.DockerException as exc:
        pytest.fail(f"no Docker engine reachable: {exc}")
    yield client
    client.close()


@pytest.fixture(scope="session")
def make_image(docker_client) -> Iterator[Callable[[str], str]]:
    """``make_image(label)``: a tiny local image (one layer, one file) under a unique name; returns the name.

    Removed, with every tag the tests gave it, at the end of the session.
    """
    import io
    import tarfile

    created: list[str] = []
    run = uuid.uuid4().hex[:8]

    def make(label: str) -> str:
        content = f"webstack.deploy test image {label} {uuid.uuid4()}\n".encode()
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            info = tarfile.TarInfo("webstack-test.txt")
            info.size = len(content)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(content))
        name = f"ecr_push-fixture-{run}:{label}"
        repository, tag = name.split(":")
        docker_client.api.import_image_from_data(buf.getvalue(), repository=repository, tag=tag)
        created.append(docker_client.images.get(name).id)
        return name

    yield make
    for image_id in created:
        with contextlib.suppress(Exception):
            docker_client.images.remove(image_id, force=True)


@dataclass
class PlayResult:
    rc: int
    tasks: dict[str, dict]  # task name -> localhost's result
    output: str
    durations: dict[str, float]  # task name -> seconds the task took (module run included)


@pytest.fixture(scope="session")
def run_play(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., PlayResult]:
    """``run_play(tasks, **vars)``: run tasks on localhost with ansible-playbook against the moto server.

    The play sets ``module_defaults: group/webstack.deploy.aws: {endpoint_url, region}`` and nothing
    else AWS-related: the modules reach moto only if the action group applies those defaults.
    Task names must be unique; tasks that are expected to fail need ``ignore_errors: true``.
    """
    workdir = tmp_path_factory.mktemp("plays")

    def run(tasks: list[dict], check: bool = False, diff: bool = True, **extra_vars) -> PlayResult:
        play = [
            {
                "name": "webstack.deploy integration",
                "hosts": "localhost",
                "connection": "local",
                "gather_facts": False,
                "vars": {"ansible_python_interpreter": sys.executable, **extra_vars},
                "module_defaults": {
                    "group/webstack.deploy.aws": {"endpoint_url": moto_endpoint, "region": REGION},
                },
                "tasks": tasks,
            }
        ]
        path = workdir / f"play-{uuid.uuid4().hex[:8]}.yml"
        path.write_text(json.dumps(play, indent=2))
        cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", "localhost,", str(path)]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        env = dict(
            os.environ,
            ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
            ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
            ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",  # i.e. none besides stdout (profile_tasks off)
            ANSIBLE_RETRY_FILES_ENABLED="false",
            ANSIBLE_NOCOLOR="1",
        )
        proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
        try:
            report = json.loads(proc.stdout)
        except ValueError:
            pytest.fail(f"ansible-playbook printed no JSON (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        tasks_out, durations = {}, {}
        for play_out in report.get("plays", []):
            for task in play_out.get("tasks", []):
                name = task["task"]["name"]
                tasks_out[name] = task["hosts"].get("localhost", {})
                span = task["task"].get("duration", {})
                if span.get("start") and span.get("end"):
                    start, end = (datetime.fromisoformat(span[k].replace("Z", "+00:00")) for k in ("start", "end"))
                    durations[name] = (end - start).total_seconds()
        return PlayResult(proc.returncode, tasks_out, proc.stdout + proc.stderr, durations)

    return run
