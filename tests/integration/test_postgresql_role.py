"""The postgresql role on one host container, as the apps would see the server.

One webstack/host:bookworm container (systemd as PID 1, the settings of playbooks/local_fleet.yml)
gets the role in check mode first (a fresh host: nothing installed, nothing fails), then twice
(the second run changes nothing). The container's own address stands in for an app host's
(``postgresql_client_addresses``), so a client inside it reaches the server over TCP on the
private address exactly as an app host would, with the user's password.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
NAME = f"pg-{uuid.uuid4().hex[:6]}"  # container, network and temporary directory of this module
PORT = 5432
USER = "webstack"
DATABASE = "webstack"
PASSWORD = "pg-test-fake-password-for-webstack"


@dataclass
class Run:
    rc: int
    changed: int
    seconds: float
    output: str


def docker(*args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    options = [arg for key, value in (env or {}).items() for arg in ("-e", f"{key}={value}")]
    if args and args[0] == "exec" and options:
        args = ("exec", *options, *args[1:])
    return subprocess.run(["docker", *args], check=check, capture_output=True, text=True, timeout=300)


def converge(inventory: Path, playbook: Path, check: bool = False, verbose: bool = False) -> Run:
    cmd = [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(inventory), str(playbook), "--diff"]
    if check:
        cmd.append("--check")
    if verbose:
        cmd.append("-vvv")
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    start = time.monotonic()
    proc = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    recap = re.search(r"^\S+\s+: ok=\d+\s+changed=(\d+)", proc.stdout, re.MULTILINE)
    changed = int(recap.group(1)) if recap else -1
    return Run(proc.returncode, changed, time.monotonic() - start, proc.stdout + proc.stderr)


@pytest.fixture(scope="module")
def server() -> Iterator[dict]:
    """The converged host: its address and the three runs (check, converge, converge again)."""
    docker("network", "create", NAME)
    docker(
        "run", "-d", "--name", NAME, "--hostname", NAME, "--network", NAME,
        "--cap-add", "SYS_ADMIN", "--cap-add", "NET_ADMIN",
        "--security-opt", "seccomp=unconfined", "--security-opt", "apparmor=unconfined",
        "--cgroupns=host", "-v", "/sys/fs/cgroup:/sys/fs/cgroup:ro",
        "--tmpfs", "/run", "--tmpfs", "/run/lock",
        "webstack/host:bookworm", "/sbin/init",
    )  # fmt: skip
    try:
        with tempfile.TemporaryDirectory(prefix=f"{NAME}-") as workdir:
            # Under heavy load systemd in a host container has been seen to stall at boot;
            # daemon-reexec gets it going again (as molecule/backup/prepare.yml does).
            state, deadline, reexec_at = "", time.monotonic() + 240, time.monotonic() + 90
            while state not in ("running", "degraded") and time.monotonic() < deadline:
                time.sleep(1)
                state = docker("exec", NAME, "systemctl", "is-system-running", check=False).stdout.strip()
                if time.monotonic() > reexec_at and state == "starting":
                    docker("exec", NAME, "systemctl", "daemon-reexec", check=False)
                    reexec_at = deadline
            assert state in ("running", "degraded"), f"systemd in {NAME} did not finish booting: {state!r}"
            address = docker("inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{NAME}").IPAddress}}}}', NAME)
            address = address.stdout.strip()
            inventory = Path(workdir) / "hosts.json"
            host_vars = {
                "ansible_connection": "community.docker.docker",
                "ansible_python_interpreter": "/usr/bin/python3",
                "postgresql_users": [{"name": USER, "password": PASSWORD}],
                "postgresql_databases": [{"name": DATABASE, "owner": USER}],
                "postgresql_client_addresses": [address],
            }
            inventory.write_text(json.dumps({"postgresql": {"hosts": {NAME: host_vars}}}))
            playbook = Path(workdir) / "converge.yml"
            playbook.write_text(
                json.dumps([{"name": "PostgreSQL", "hosts": "postgresql", "roles": ["webstack.deploy.postgresql"]}])
            )
            runs = {}
            # The second converge at -vvv: not even there may the password show.
            for step, check, verbose in (("check", True, False), ("first", False, False), ("second", False, True)):
                runs[step] = converge(inventory, playbook, check=check, verbose=verbose)
                print(f"{step}: rc={runs[step].rc} changed={runs[step].changed} {runs[step].seconds:.1f} s")
                if step == "check":
                    runs["installed_after_check"] = docker("exec", NAME, "dpkg", "-s", "postgresql", check=False)
            yield {"address": address, "runs": runs}
    finally:
        docker("rm", "-f", "-v", NAME, check=False)
        docker("network", "rm", NAME, check=False)


def psql(server: dict, sql: str, password: str = PASSWORD, database: str = DATABASE) -> subprocess.CompletedProcess:
    """psql inside the container over TCP to the private address, the way an app logs in."""
    return docker(
        "exec", NAME, "psql", "-h", server["address"], "-p", str(PORT), "-U", USER, "-d", database,
        "-w", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql,
        check=False, env={"PGPASSWORD": password},
    )  # fmt: skip


def test_check_mode_on_a_fresh_host_changes_nothing_and_does_not_fail(server):
    check = server["runs"]["check"]
    assert check.rc == 0, check.output[-4000:]
    assert check.changed > 0  # the packages are reported as to be installed
    assert server["runs"]["installed_after_check"].returncode != 0  # ...and are not
    assert PASSWORD not in check.output


def test_converge_then_converge_again_changes_nothing(server):
    first, second = server["runs"]["first"], server["runs"]["second"]
    assert first.rc == 0, first.output[-4000:]
    assert first.changed > 0
    assert second.rc == 0, second.output[-4000:]
    assert second.changed == 0, second.output[-4000:]
    assert PASSWORD not in first.output + second.output  # the second one ran at -vvv


def test_listens_on_loopback_and_the_private_address_only(server):
    listening = docker("exec", NAME, "ss", "-Hltn", f"sport = :{PORT}").stdout.split("\n")
    local = sorted(line.split()[3] for line in listening if line.strip())
    assert local == sorted([f"127.0.0.1:{PORT}", f"{server['address']}:{PORT}"])


def test_the_user_logs_in_over_tcp_with_its_password_and_creates_a_table(server):
    sql = "CREATE TABLE items (id int); INSERT INTO items VALUES (1); SELECT current_user, count(*) FROM items"
    result = psql(server, sql)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"{USER}|1"


def test_a_wrong_password_is_refused(server):
    result = psql(server, "SELECT 1", password="not-the-password-of-webstack")
    assert result.returncode != 0
    assert f'password authentication failed for user "{USER}"' in result.stderr


def test_other_databases_are_refused_over_tcp(server):
    result = psql(server, "SELECT 1", database="postgres")
    assert result.returncode != 0
    assert "no pg_hba.conf entry" in result.stderr
