"""playbooks/maintenance.yml on both kinds of fleet, as an on-call engineer would see it.

Docker hosts: one host container (webstack/host:bookworm, systemd as PID 1, settings of
playbooks/local_fleet.yml) converged with the nginx role in front of a small backend; the test
reaches nginx by the container's address as a client would. Maintenance on: the app path answers
503 with the page, the health paths still 200; a converge of the whole role keeps maintenance on;
off: the app path answers again. Each switch: check mode first (no change), then twice (the second
run changes nothing).

Auto Scaling fleets: the staging platform provisioned on a moto server (playbooks/provision_aws.yml),
then maintenance on/off with ``--limit aws_control``: the HTTPS listener gets, then loses, a
fixed-response 503 rule at priority 1, and its default action and colour rules stay as they were.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_ec2_autoscaling import account_vars, clients, moto_with_managed_policies

REPO_ROOT = Path(__file__).resolve().parents[2]
PREFIX = "ops-maintenance"  # container, network and temporary paths of this module
HOST = f"{PREFIX}-{uuid.uuid4().hex[:6]}"
SITE = "maint.webstack.test"
PAGE_TITLE = "Back in a moment"  # nginx_maintenance_title of the test inventory
API = {"name": "api", "path": "/api", "upstream_port": 5001, "health_path": "/health"}


@dataclass
class Run:
    rc: int
    changed: int  # summed over the hosts of the PLAY RECAP
    changed_tasks: list[str]
    failures: list[str]
    seconds: float
    output: str


def run_playbook(
    playbook: Path,
    inventory: Path | str,
    extra: dict,
    check: bool = False,
    limit: str | None = None,
    env: dict | None = None,
) -> Run:
    """ansible-playbook with the JSON callback; failures and changed tasks of every host."""
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook)]
    cmd += ["-e", json.dumps(extra), "--diff"]
    if check:
        cmd.append("--check")
    if limit:
        cmd += ["--limit", limit]
    environment = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACKS_ENABLED="ansible.posix.json",
        ANSIBLE_NOCOLOR="1",
        **(env or {}),
    )
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=600)
    seconds = time.monotonic() - start
    try:
        report = json.loads(proc.stdout[proc.stdout.index("{") :])
    except ValueError:
        pytest.fail(f"ansible-playbook printed no JSON (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    failures, changed_tasks = [], []
    for play in report.get("plays", []):
        for task in play.get("tasks", []):
            for host, result in task["hosts"].items():
                name = f"{host}: {task['task']['name']}"
                if result.get("failed") or result.get("unreachable"):
                    failures.append(f"{name}: {result.get('msg')}")
                if result.get("changed"):
                    changed_tasks.append(name)
    changed = sum(s.get("changed", 0) for s in report.get("stats", {}).values())
    return Run(proc.returncode, changed, changed_tasks, failures, seconds, proc.stdout + proc.stderr)


def docker(*args: str, check: bool = True) -> str:
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True, timeout=300).stdout.strip()


# --- Docker hosts: nginx ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix=f"{PREFIX}-") as path:
        yield Path(path)


@pytest.fixture(scope="module")
def app_host(workdir: Path) -> Iterator[dict]:
    """A converged nginx host in front of a backend (/api/items, /health); yields its inventory and address."""
    docker("network", "create", PREFIX, check=False)
    docker(
        "run", "-d", "--name", HOST, "--hostname", HOST, "--network", PREFIX,
        "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
        "--tmpfs", "/run", "--tmpfs", "/run/lock",
        "webstack/host:bookworm", "/sbin/init",
    )  # fmt: skip
    try:
        for _ in range(60):
            state = docker("exec", HOST, "systemctl", "is-system-running", check=False)
            if state in ("running", "degraded"):
                break
            time.sleep(1)
        # The backend: static files behind python's http.server on 127.0.0.1:5001.
        docker("exec", HOST, "sh", "-c", "mkdir -p /srv/backend/api && echo ok > /srv/backend/health"
               " && echo '[\"item\"]' > /srv/backend/api/items")  # fmt: skip
        docker(
            "exec", HOST, "systemd-run", "--unit", "ops-test-backend", "--property", "Restart=always",
            "/usr/bin/python3", "-m", "http.server", "5001", "--bind", "127.0.0.1", "--directory", "/srv/backend",
        )  # fmt: skip
        address = docker("inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{PREFIX}").IPAddress}}}}', HOST)
        inventory = workdir / "hosts.yml"
        host_vars = {
            "ansible_connection": "community.docker.docker",
            "ansible_python_interpreter": "/usr/bin/python3",
            "nginx_sites": [{"name": "maint", "server_names": [SITE], "tls": {"mode": "selfsigned_ca"}, "apps": [API]}],
            "nginx_letsencrypt_request": False,
            "nginx_maintenance_title": PAGE_TITLE,
        }
        inventory.write_text(json.dumps({"app": {"hosts": {HOST: host_vars}}}))
        converge = workdir / "converge.yml"
        converge.write_text(
            json.dumps([{"name": "Converge nginx", "hosts": "app", "roles": [{"role": "webstack.deploy.nginx"}]}])
        )
        first = run_playbook(converge, inventory, {})
        assert first.rc == 0, first.failures or first.output[-3000:]
        print(f"nginx converge: {first.seconds:.1f} s")
        yield {"inventory": inventory, "converge": converge, "address": address}
    finally:
        docker("rm", "-f", "-v", HOST, check=False)
        docker("network", "rm", PREFIX, check=False)


def get(address: str, path: str) -> tuple[int, dict, str]:
    import requests
    import urllib3

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", urllib3.exceptions.InsecureRequestWarning)
        response = requests.get(f"https://{address}{path}", headers={"Host": SITE}, verify=False, timeout=10)
    return response.status_code, dict(response.headers), response.text


def switch(app_host: dict, state: str, check: bool = False) -> Run:
    playbook = REPO_ROOT / "playbooks" / "maintenance.yml"
    run = run_playbook(playbook, app_host["inventory"], {"maintenance": state}, check)
    print(f"maintenance={state}{' --check' if check else ''}: {run.seconds:.1f} s, changed={run.changed}")
    return run


def assert_serving(address: str) -> None:
    status, _, body = get(address, "/api/items")
    assert (status, body.strip()) == (200, '["item"]')


def assert_maintenance(address: str) -> None:
    status, headers, body = get(address, "/api/items")
    assert status == 503
    assert PAGE_TITLE in body
    assert headers["Retry-After"] == "600"
    assert headers["Cache-Control"] == "no-store"
    assert get(address, "/")[0] == 503
    # Health checks keep answering: the app's health path (proxied) and nginx's own.
    assert get(address, "/health")[:3:2] == (200, "ok\n")
    assert get(address, "/healthz")[:3:2] == (200, "ok\n")


def test_maintenance_on_serves_503_and_keeps_health_checks(app_host: dict):
    address = app_host["address"]
    assert_serving(address)

    check = switch(app_host, "on", check=True)
    assert check.rc == 0, check.failures or check.output[-3000:]
    assert check.changed > 0
    assert_serving(address)  # check mode changed nothing

    on = switch(app_host, "on")
    assert on.rc == 0, on.failures or on.output[-3000:]
    assert on.changed > 0
    assert_maintenance(address)

    again = switch(app_host, "on")
    assert again.rc == 0, again.failures
    assert again.changed == 0, again.changed_tasks


def test_converging_the_host_keeps_maintenance_on(app_host: dict):
    run = run_playbook(app_host["converge"], app_host["inventory"], {})
    assert run.rc == 0, run.failures or run.output[-3000:]
    assert run.changed == 0, run.changed_tasks
    assert_maintenance(app_host["address"])


def test_maintenance_off_serves_the_app_again(app_host: dict):
    address = app_host["address"]
    check = switch(app_host, "off", check=True)
    assert check.rc == 0, check.failures or check.output[-3000:]
    assert check.changed > 0
    assert_maintenance(address)

    off = switch(app_host, "off")
    assert off.rc == 0, off.failures or off.output[-3000:]
    assert_serving(address)
    assert get(address, "/health")[0] == 200

    again = switch(app_host, "off")
    assert again.rc == 0, again.failures
    assert again.changed == 0, again.changed_tasks


def test_smoke_test_playbook_passes_then_names_what_fails(app_host: dict):
    playbook = REPO_ROOT / "playbooks" / "smoke_test.yml"
    extra = {"smoke_test_paths": ["/api/items"], "smoke_test_tries": 1}
    run = run_playbook(playbook, app_host["inventory"], extra)
    print(f"smoke_test.yml: {run.seconds:.1f} s")
    assert run.rc == 0, run.failures or run.output[-3000:]
    # The app's health endpoint answers 404 now.
    docker("exec", HOST, "mv", "/srv/backend/health", "/srv/backend/health.off")
    try:
        run = run_playbook(playbook, app_host["inventory"], extra)
    finally:
        docker("exec", HOST, "mv", "/srv/backend/health.off", "/srv/backend/health")
    assert run.rc != 0
    assert any("Ask each app's health path through nginx" in f for f in run.failures), run.failures


@pytest.mark.parametrize("value", ["maybe", None])
def test_bad_request_fails_naming_the_variable(app_host: dict, value: str | None):
    extra = {} if value is None else {"maintenance": value}
    run = run_playbook(REPO_ROOT / "playbooks" / "maintenance.yml", app_host["inventory"], extra)
    assert run.rc != 0
    assert run.changed == 0
    assert any("maintenance: give -e maintenance=on" in f for f in run.failures), run.failures


# --- Auto Scaling fleets: the ALB ------------------------------------------------------------------------

NAME = "webstack-staging"


@pytest.fixture(scope="module")
def aws_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from moto_with_managed_policies(tmp_path_factory)


@pytest.fixture(scope="module")
def aws(aws_server: str) -> Callable:
    return clients(aws_server)


@pytest.fixture(scope="module")
def alb(aws_server: str, aws: Callable) -> dict:
    """The staging platform on moto; returns its HTTPS listener's ARN, default action and rules."""
    extra = {"aws_endpoint_url": aws_server, **account_vars(aws)}
    run = run_playbook(
        REPO_ROOT / "playbooks" / "provision_aws.yml", "inventories/staging", extra, env={"AWS_URL": aws_server}
    )
    assert run.rc == 0, run.failures or run.output[-3000:]
    print(f"provision_aws (staging on moto): {run.seconds:.1f} s")
    (balancer,) = aws("elbv2").describe_load_balancers(Names=[NAME])["LoadBalancers"]
    listeners = aws("elbv2").describe_listeners(LoadBalancerArn=balancer["LoadBalancerArn"])["Listeners"]
    (https,) = [listener for listener in listeners if listener["Port"] == 443]
    return {"extra": extra, "listener_arn": https["ListenerArn"], "default": https["DefaultActions"],
            "rules": rules(aws, https["ListenerArn"])}  # fmt: skip


def rules(aws: Callable, listener_arn: str) -> dict[str, dict]:
    described = aws("elbv2").describe_rules(ListenerArn=listener_arn)["Rules"]
    return {r["Priority"]: {"Conditions": r["Conditions"], "Actions": r["Actions"]} for r in described}


def switch_alb(aws_server: str, alb: dict, state: str, check: bool = False) -> Run:
    run = run_playbook(
        REPO_ROOT / "playbooks" / "maintenance.yml",
        "inventories/staging",
        {**alb["extra"], "maintenance": state},
        check=check,
        limit="aws_control",
        env={"AWS_URL": aws_server},
    )
    print(f"ALB maintenance={state}{' --check' if check else ''}: {run.seconds:.1f} s, changed={run.changed}")
    assert run.rc == 0, run.failures or run.output[-3000:]
    return run


def test_alb_maintenance_on_and_off(aws_server: str, aws: Callable, alb: dict):
    listener = alb["listener_arn"]
    assert "1" not in alb["rules"]

    assert switch_alb(aws_server, alb, "on", check=True).changed == 1
    assert rules(aws, listener) == alb["rules"]

    assert switch_alb(aws_server, alb, "on").changed == 1
    now = rules(aws, listener)
    (action,) = now["1"]["Actions"]
    assert action["Type"] == "fixed-response"
    assert action["FixedResponseConfig"]["StatusCode"] == "503"
    assert action["FixedResponseConfig"]["ContentType"] == "text/html"
    assert "<h1>Down for maintenance</h1>" in action["FixedResponseConfig"]["MessageBody"]
    assert [c["Field"] for c in now["1"]["Conditions"]] == ["path-pattern"]
    # The colour rules and the default action (the live colour) are untouched underneath.
    assert {p: r for p, r in now.items() if p != "1"} == alb["rules"]
    default = aws("elbv2").describe_listeners(ListenerArns=[listener])["Listeners"][0]["DefaultActions"]
    assert default == alb["default"]

    assert switch_alb(aws_server, alb, "on").changed == 0

    assert switch_alb(aws_server, alb, "off", check=True).changed == 1
    assert "1" in rules(aws, listener)
    assert switch_alb(aws_server, alb, "off").changed == 1
    assert rules(aws, listener) == alb["rules"]
    assert switch_alb(aws_server, alb, "off").changed == 0
