"""The local fleet, converged once per session, for end-to-end tests of the whole platform.

``fleet`` starts a fleet of its own (``playbooks/local_fleet.yml`` with a container-name prefix and
a port offset unique to this run, so a demo or another run beside it is never touched), converges it
with ``site.yml -i inventories/local`` and removes it at the end. Tests then run the collection's
playbooks against it with ``fleet.play(...)`` and reach nginx through the ports it published on
127.0.0.1.

Environment:
* ``WEBSTACK_E2E_PREFIX`` / ``WEBSTACK_E2E_PORT_OFFSET``: reuse a fleet made earlier with these
  (``WEBSTACK_FLEET_PREFIX`` / ``WEBSTACK_FLEET_PORT_OFFSET``); it is then neither converged first
  nor removed at the end (for working on one test without paying the converge each time).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from secret_values import count_secrets, inventory_secrets

REPO_ROOT = Path(__file__).resolve().parents[2]
INVENTORY = "inventories/local"
# The ports the local inventory publishes before the offset (inventories/local/hosts.yml).
BASE_PORTS = {"local-app1": {80: 8080, 443: 8443}, "local-app2": {80: 9080, 443: 9443}}
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


@dataclass
class Run:
    rc: int
    output: str
    seconds: float
    recap: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def changed(self) -> dict[str, int]:
        return {host: r["changed"] for host, r in self.recap.items() if r["changed"]}


@dataclass
class Fleet:
    prefix: str
    offset: int
    env: dict[str, str]
    converge: Run | None = None
    # The local inventory's secret values, and those any run printed (each run is at -vvv).
    secrets: set[str] = field(default_factory=lambda: inventory_secrets(INVENTORY))
    printed: dict[str, dict[str, int]] = field(default_factory=dict)

    def play(self, playbook: str, *args: str, timeout: int = 2700) -> Run:
        """``ansible-playbook -vvv -i inventories/local <playbook> <args>`` against this fleet.

        Every run is at -vvv and its output is searched for the inventory's secrets (``printed``).
        ``timeout`` only guards against a hung run (a first converge beside the rest of the suite
        on a 2-core machine has taken more than 30 min); a run stopped by it returns rc 124 and what it
        printed so far, so the failure shows where it stood.
        """
        start = time.monotonic()
        try:
            proc = subprocess.run(
                ["ansible-playbook", "-vvv", "-i", INVENTORY, playbook, *args],
                cwd=REPO_ROOT,
                env=self.env,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            printed = [
                part.decode(errors="replace") if isinstance(part, bytes) else part or ""
                for part in (exc.stdout, exc.stderr)
            ]
            proc = subprocess.CompletedProcess(
                exc.cmd, 124, printed[0] + f"\n(stopped after {timeout} s)\n", printed[1]
            )
        output = proc.stdout + proc.stderr
        recap = {
            m[1]: {"ok": int(m[2]), "changed": int(m[3]), "unreachable": int(m[4]), "failed": int(m[5])}
            for m in RECAP.finditer(proc.stdout)
        }
        found = count_secrets(output, self.secrets)
        if found:
            self.printed[" ".join([playbook, *args])] = found
        return Run(proc.returncode, output, time.monotonic() - start, recap)

    def port(self, host: str, container_port: int) -> int:
        return BASE_PORTS[host][container_port] + self.offset

    def container(self, host: str) -> str:
        return f"{self.prefix}{host}"

    def exec(self, host: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run a command in one host of the fleet (as root)."""
        return subprocess.run(
            ["docker", "exec", self.container(host), *argv], capture_output=True, text=True, timeout=120, check=check
        )


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_offset() -> int:
    """An offset in 20000-39999 at which every port the fleet publishes is free."""
    for _ in range(200):
        offset = 20000 + int.from_bytes(os.urandom(2), "big") % 20000 // 10 * 10
        if all(_free(p + offset) for ports in BASE_PORTS.values() for p in ports.values()):
            return offset
    raise RuntimeError("no free port offset for the e2e fleet")


def _fail(what: str, run: Run) -> None:
    pytest.fail(f"{what} failed (rc {run.rc}) after {run.seconds:.0f}s:\n{run.output[-6000:]}")


@pytest.fixture(scope="session")
def fleet() -> Iterator[Fleet]:
    reuse = "WEBSTACK_E2E_PREFIX" in os.environ
    prefix = os.environ.get("WEBSTACK_E2E_PREFIX", f"e2e{uuid.uuid4().hex[:6]}-")
    offset = int(os.environ.get("WEBSTACK_E2E_PORT_OFFSET") or _free_offset())
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="false",
        WEBSTACK_FLEET_PREFIX=prefix,
        WEBSTACK_FLEET_PORT_OFFSET=str(offset),
    )
    fleet = Fleet(prefix, offset, env)
    print(f"\ne2e fleet: prefix {prefix}, port offset {offset}")
    try:
        if not reuse:
            run = fleet.play("playbooks/local_fleet.yml")
            if run.rc:
                _fail("playbooks/local_fleet.yml", run)
            fleet.converge = fleet.play("site.yml")
            print(f"site.yml, first converge: {fleet.converge.seconds:.0f}s")
            if fleet.converge.rc:
                _fail("site.yml (first converge)", fleet.converge)
        yield fleet
    finally:
        if not reuse:
            fleet.play("playbooks/local_fleet.yml", "-e", "local_fleet_state=absent")


# The files share one fleet and each leaves it in a state the next expects: the converge checks
# first, then the operations in this order; files not named here come after them. The checks
# over every run's -vvv output (names with "printed") come last, once every playbook has run.
FILE_ORDER = ["test_site.py", "test_site_operations.py", "test_logs.py", "test_release_restore.py"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> tuple[int, int]:
        name = Path(str(item.fspath)).name
        position = FILE_ORDER.index(name) if name in FILE_ORDER else len(FILE_ORDER)
        return ("printed" in item.name, position)

    items.sort(key=rank)
