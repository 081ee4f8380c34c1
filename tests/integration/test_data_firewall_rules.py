"""The ports the data roles declare to the firewall role, as their defaults compute them.

The defaults are read from the roles and evaluated by ansible-playbook against an
inventory of app hosts, the way the firewall role sees them in site.yml's data play.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def declared(
    tmp_path: Path, role: str, serving: bool, app_hosts: dict, extra: dict | None = None
) -> subprocess.CompletedProcess:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        json.dumps(
            {
                "all": {
                    "children": {
                        "app": {"hosts": app_hosts},
                        role: {"hosts": {"db1": {"ansible_host": "10.0.5.1"}}},
                    }
                }
            }
        )
    )
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        textwrap.dedent(
            f"""\
            - hosts: db1
              connection: local
              gather_facts: false
              vars_files:
                - {ROOT}/roles/{role}/defaults/main.yml
              tasks:
                - ansible.builtin.set_fact:
                    __{role}_serving: true
                  when: serving | bool
                - ansible.builtin.copy:
                    content: "{{{{ {role}_firewall_rules | to_json }}}}"
                    dest: {tmp_path}/rules.json
                    mode: "0600"
            """
        )
    )
    variables = {"ansible_python_interpreter": sys.executable, "serving": serving, **(extra or {})}
    env = dict(
        os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1", ANSIBLE_STDOUT_CALLBACK="default"
    )
    return subprocess.run(
        ["ansible-playbook", "-i", str(inventory), str(playbook), "-e", json.dumps(variables)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def rules(result: subprocess.CompletedProcess) -> list:
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((Path(result.args[2]).parent / "rules.json").read_text())


APPS = {"app1": {"ansible_host": "10.0.1.4"}, "app2": {"ansible_host": "10.0.1.5"}}


@pytest.mark.parametrize(("role", "port"), [("redis", 6379), ("mongodb", 27017)])
def test_port_open_to_each_app_host_where_the_role_ran(tmp_path, role, port):
    assert rules(declared(tmp_path, role, True, APPS)) == [
        {"name": role, "port": port, "proto": "tcp", "from": "10.0.1.4/32"},
        {"name": role, "port": port, "proto": "tcp", "from": "10.0.1.5/32"},
    ]


@pytest.mark.parametrize("role", ["redis", "mongodb"])
def test_nothing_declared_where_the_role_was_skipped(tmp_path, role):
    assert rules(declared(tmp_path, role, False, APPS)) == []


def test_an_app_host_without_address_stops_the_run_naming_the_variable(tmp_path):
    result = declared(tmp_path, "redis", True, {"app1": {"ansible_host": "app1.internal"}})
    assert result.returncode != 0
    assert "redis_client_addresses: no address known for app1" in result.stdout + result.stderr


def test_redis_port_follows_redis_port(tmp_path):
    assert rules(declared(tmp_path, "redis", True, {"app1": {"ansible_host": "10.0.1.4"}}, {"redis_port": 6380})) == [
        {"name": "redis", "port": 6380, "proto": "tcp", "from": "10.0.1.4/32"}
    ]
