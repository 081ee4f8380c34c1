"""The group model and where a value goes, as ``ansible-inventory`` sees every environment.

README.md ("Groups", "Where a value goes") documents one set of groups for every inventory and
this precedence, lowest first: role defaults < ``group_vars/all.yml`` (shared) <
``inventories/<env>/group_vars/<env>.yml`` < ``inventories/<env>/group_vars/<group>.yml`` <
host variables. These tests read the inventories the way ``ansible-playbook`` does
(``--playbook-dir`` loads the playbook-level ``group_vars``) and check both.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import REPO_ROOT

# Groups every inventory names (some are empty by choice in an environment).
GROUPS = {"app", "redis", "postgresql", "mongodb", "logs", "aws_control"}
ENVIRONMENTS = ["local"]


def inventory(env: str, *args: str) -> str:
    result = subprocess.run(
        ["ansible-inventory", "-i", f"inventories/{env}", "--playbook-dir", ".", *args],
        cwd=REPO_ROOT,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def host_vars(env: str, host: str) -> dict:
    return json.loads(inventory(env, "--host", host))


def group_children(env: str) -> dict[str, set[str]]:
    """Each group of ``--graph`` (which, unlike ``--list``, shows empty groups) and its children."""
    children: dict[str, set[str]] = {}
    parents: list[str] = []
    for line in inventory(env, "--graph").splitlines():
        depth = line.count("|")
        name = line.split("--", 1)[-1].strip()
        if not name.startswith("@"):
            continue
        name = name[1:].rstrip(":")
        parents = parents[: max(depth - 1, 0)]
        if parents:
            children.setdefault(parents[-1], set()).add(name)
        children.setdefault(name, set())
        parents.append(name)
    return children


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_environment_names_the_same_groups(env):
    tree = group_children(env)
    assert set(tree) >= GROUPS, f"{env} lacks {sorted(GROUPS - set(tree))}"
    # The environment's own group holds every other group, so group_vars/<env>.yml applies to all.
    assert tree[env] >= GROUPS, f"{env}'s own group lacks {sorted(GROUPS - tree[env])}"


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_environment_values_outrank_the_shared_ones(env):
    values = host_vars(env, "localhost")
    assert values["platform_environment"] == env
    # group_vars/all.yml (shared) says [app]; the environment's file says more.
    assert values["platform_required_groups"] != ["app"]
    assert "app" in values["platform_required_groups"]
    # A value only the shared file sets still arrives.
    assert values["platform_name"] == "webstack"


def test_group_values_outrank_the_environment_on_the_local_fleet():
    app = host_vars("local", "local-app1")
    data = host_vars("local", "local-data1")
    # inventories/local/group_vars/app.yml applies to app hosts only.
    assert app["nginx_sites"][0]["name"] == "sample"
    assert "nginx_sites" not in data
    # Both still carry the environment's values.
    assert app["platform_environment"] == data["platform_environment"] == "local"
    # Host variables of the inventory file outrank every group file.
    assert host_vars("local", "localhost")["ansible_connection"] == "local"
    assert app["ansible_connection"] == "community.docker.docker"


def test_site_stops_on_an_empty_required_group_naming_it():
    """site.yml fails before any change when a group the environment needs has no host."""
    result = subprocess.run(
        [
            "ansible-playbook",
            "site.yml",
            "-i",
            "inventories/local",
            "-e",
            '{"platform_required_groups": ["app", "mongodb"]}',
        ],
        cwd=REPO_ROOT,
        env={**os.environ, "ANSIBLE_CONFIG": str(REPO_ROOT / "ansible.cfg")},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert "platform_required_groups: mongodb holds no host" in result.stdout + result.stderr
    # Only the preflight play ran: no task reached a host.
    assert "local-app1" not in result.stdout
