"""No secret of an inventory appears in the output of a run, even at -vvv.

The secrets are the values of the inventory's variables whose names say they are
secret (password, secret, token, key), wherever they sit in the variables
(``base_admin_users[].password_hash`` counts). Each run in ``RUNS`` converges a
playbook at ``-vvv`` on a host container of its own that joins the inventory's
groups, and the test counts every secret value in everything Ansible printed:
the count must be 0.

To check more playbooks (the local demo's, on the local fleet), add a ``Run``:
the playbook, the inventory, the groups the test host joins, and the tags.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from secret_values import count_secrets, inventory_secrets, secrets_of

REPO_ROOT = Path(__file__).resolve().parents[2]
ANSIBLE_BIN = Path(sys.executable).parent
# Container names of the test start with this prefix (one run never meets another's).
PREFIX = os.environ.get("WEBSTACK_TEST_PREFIX", "webstack-test-")

# systemd as PID 1 in a host container, as the local fleet and Molecule run it.
HOST_CONTAINER_ARGS = [
    "--cap-add",
    "SYS_ADMIN",
    "--cap-add",
    "NET_ADMIN",
    "--security-opt",
    "seccomp=unconfined",
    "--security-opt",
    "apparmor=unconfined",
    "--cgroupns=host",
    "-v",
    "/sys/fs/cgroup:/sys/fs/cgroup:ro",
    "--tmpfs",
    "/run",
    "--tmpfs",
    "/run/lock",
]


@dataclass(frozen=True)
class Run:
    """One playbook run whose output is searched for secrets."""

    name: str
    playbook: str  # relative to the repository root, or inline YAML when it starts with '- '
    inventory: str = "inventories/local"
    groups: tuple[str, ...] = ("local",)  # groups the test host joins
    image: str = "webstack/host:bookworm"
    tags: tuple[str, ...] = ()
    extra_vars: dict = field(default_factory=dict)


BASE_PLAY = """\
- name: The base role with the inventory's values
  hosts: all
  roles:
    - role: webstack.deploy.base
"""

RUNS = [
    Run(name="base", playbook=BASE_PLAY, groups=("local", "postgresql", "redis")),
]


def test_secrets_of_finds_nested_values_and_skips_public_keys():
    inventory = {
        "_meta": {
            "hostvars": {
                "h1": {
                    "base_admin_users": [
                        {"name": "admin", "password_hash": "$6$salt$abcdefgh", "ssh_keys": ["ssh-ed25519 AAAA pub"]}
                    ],
                    "compose_stack_services": [{"name": "api", "secret_environment": {"DB_URL": "postgres://u:p@db"}}],
                    "registry_token": "tok-123456789",
                    "nginx_server_tokens": False,
                    "templated_password": "{{ vault_password }}",
                }
            }
        }
    }
    assert secrets_of(inventory) == {"$6$salt$abcdefgh", "postgres://u:p@db", "tok-123456789"}


def test_count_secrets_counts_each_occurrence():
    assert count_secrets("a s3cret-value b s3cret-value", {"s3cret-value", "absent-one"}) == {"s3cret-value": 2}


def _docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check, timeout=300)


@pytest.fixture
def host_container(request) -> Iterator[str]:
    """A systemd host container of the run's image; removed afterwards."""
    run: Run = request.param
    name = f"{PREFIX}nosecrets-{uuid.uuid4().hex[:8]}"
    image = _docker("image", "inspect", run.image, check=False)
    if image.returncode != 0:
        pytest.fail(f"image {run.image} is missing: build the host images with tools/images.sh")
    _docker("run", "-d", "--name", name, "--hostname", name, *HOST_CONTAINER_ARGS, run.image, "/sbin/init")
    try:
        deadline = time.monotonic() + 90
        state = ""
        while time.monotonic() < deadline:
            state = _docker("exec", name, "systemctl", "is-system-running", check=False).stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(1)
        else:
            pytest.fail(f"systemd in {name} did not come up: {state}")
        yield name
    finally:
        _docker("rm", "-f", "-v", name, check=False)


@pytest.mark.parametrize("host_container", RUNS, ids=[r.name for r in RUNS], indirect=True)
def test_no_secret_in_vvv_output(request, host_container: str, tmp_path: Path):
    run: Run = request.node.callspec.params["host_container"]
    secrets = inventory_secrets(run.inventory)
    assert secrets, f"{run.inventory} holds no secret values: the test would prove nothing"

    # The test host joins the inventory's groups through a second inventory source.
    extra_inventory = tmp_path / "test_host.json"
    extra_inventory.write_text(
        json.dumps({group: {"hosts": {host_container: {}}} for group in run.groups}),
    )
    playbook = Path(run.playbook)
    if run.playbook.startswith("- "):
        playbook = tmp_path / "play.yml"
        playbook.write_text(run.playbook)
    cmd = [
        str(ANSIBLE_BIN / "ansible-playbook"),
        "-vvv",
        "--diff",
        "-i",
        run.inventory,
        "-i",
        str(extra_inventory),
        "--limit",
        host_container,
        str(playbook),
    ]
    if run.tags:
        cmd += ["--tags", ",".join(run.tags)]
    if run.extra_vars:
        cmd += ["-e", json.dumps(run.extra_vars)]
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False)
    output = proc.stdout + proc.stderr
    (tmp_path / "output.txt").write_text(output)
    assert proc.returncode == 0, f"ansible-playbook failed (rc {proc.returncode}):\n{output[-5000:]}"
    assert "<" + host_container + ">" in output, "the run did not reach the test host at -vvv"

    leaked = count_secrets(output, secrets)
    # Report where a secret showed up, with the secret itself masked.
    where = []
    for secret in leaked:
        for line in output.splitlines():
            if secret in line:
                where.append(line.replace(secret, "<SECRET>")[:300])
    assert sum(leaked.values()) == 0, (
        f"{sum(leaked.values())} occurrence(s) of {len(leaked)} secret value(s) of {run.inventory} in the -vvv output "
        f"(full output in {tmp_path / 'output.txt'}):\n" + "\n".join(where[:20])
    )
