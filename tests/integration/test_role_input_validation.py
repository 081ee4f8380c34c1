"""Bad input stops a role before anything changes, with a message naming the variable.

Each case runs a role in check mode against localhost: the play must fail in
argument validation or the role's own checks, before any task that could change
the host, and say which variable was wrong, what was expected and what was found.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run_role(tmp_path: Path, role: str, variables: dict) -> subprocess.CompletedProcess:
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        textwrap.dedent(
            f"""\
            - hosts: localhost
              connection: local
              gather_facts: false
              roles:
                - role: webstack.deploy.{role}
            """
        )
    )
    extra = tmp_path / "vars.json"
    extra.write_text(json.dumps(variables))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    return subprocess.run(
        ["ansible-playbook", "--check", "-i", "localhost,", str(playbook), "-e", f"@{extra}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


CASES = [
    pytest.param(
        "firewall",
        {"firewall_admin_cidrs": ["10.0.0.0/33"]},
        ["firewall_admin_cidrs", "10.0.0.0/33", "expected a CIDR"],
        id="firewall-malformed-cidr",
    ),
    pytest.param(
        "firewall",
        {"firewall_admin_cidrs": ["10.0.0.0/8"], "firewall_default_incoming": "drop"},
        ["firewall_default_incoming", "drop", "allow, deny, reject"],
        id="firewall-unknown-choice",
    ),
    pytest.param(
        "firewall",
        {"firewall_admin_cidrs": ["10.0.0.0/8"], "firewall_ssh_port": "ssh"},
        ["firewall_ssh_port", "int"],
        id="firewall-wrong-type",
    ),
    pytest.param(
        "firewall",
        {"firewall_admin_cidrs": ["10.0.0.0/8"], "web_firewall_rules": [{"name": "web", "port": 70000}]},
        ["firewall rule 'web'", "port", "70000"],
        id="firewall-declared-rule-bad-port",
    ),
    pytest.param(
        "firewall",
        {"firewall_admin_cidrs": []},
        ["firewall_admin_cidrs is empty"],
        id="firewall-ssh-without-admin-networks",
    ),
    pytest.param(
        "base",
        {"base_admin_users": [{"name": "root", "ssh_keys": []}]},
        ["base_admin_users", "root"],
        id="base-root-as-admin",
    ),
    pytest.param(
        "base",
        {"base_admin_users": [{"name": "alice", "state": "gone"}]},
        ["state", "gone", "present, absent"],
        id="base-unknown-user-state",
    ),
    pytest.param(
        "base",
        {"base_sshd_port": [22]},
        ["base_sshd_port", "int"],
        id="base-wrong-type",
    ),
    pytest.param(
        "redis",
        {"redis_password": "fake-redis-password-for-tests", "redis_maxmemory_policy": "lru"},
        ["redis_maxmemory_policy", "lru", "allkeys-lru, allkeys-lfu"],
        id="redis-unknown-eviction-policy",
    ),
    pytest.param(
        "redis",
        {},
        ["missing required arguments: redis_password"],
        id="redis-no-password",
    ),
    pytest.param(
        "redis",
        {"redis_password": "too-short-pw"},
        ["redis_password: expected at least 16 characters, found 12"],
        id="redis-short-password",
    ),
    pytest.param(
        "redis",
        {"redis_password": "fake-redis-password-for-tests", "redis_bind_addresses": ["127.0.0.1", "0.0.0.0"]},
        ["redis_bind_addresses: '0.0.0.0' listens on every address"],
        id="redis-wildcard-bind",
    ),
    pytest.param(
        "redis",
        {"redis_password": "fake-redis-password-for-tests", "redis_maxmemory": "lots"},
        ["redis_maxmemory: expected a size such as 0, 512mb or 2gb, found 'lots'"],
        id="redis-bad-memory-size",
    ),
    pytest.param(
        "redis",
        {
            "redis_password": "fake-redis-password-for-tests",
            "redis_acl_users": [{"name": "ops", "password": "fake-ops-password-for-tests", "rules": ">x +@all"}],
        },
        ["redis_acl_users entry 'ops': rules: passwords are set from 'password' only"],
        id="redis-password-in-acl-rules",
    ),
    pytest.param(
        "mongodb",
        {
            "mongodb_replicaset_name": "",
            "mongodb_admin_password": "fake-admin-password-for-tests",
            "mongodb_version": "6.0.5",
        },
        ["mongodb_version: expected a release of the 7.0 series", "found 6.0.5"],
        id="mongodb-version-outside-series",
    ),
    pytest.param(
        "mongodb",
        {"mongodb_admin_password": "fake-admin-password-for-tests"},
        ["mongodb_keyfile_content: expected the replica set's shared key"],
        id="mongodb-replica-set-without-key",
    ),
    pytest.param(
        "mongodb",
        {
            "mongodb_replicaset_name": "",
            "mongodb_admin_password": "fake-admin-password-for-tests",
            "mongodb_indexes": [{"collection": "studentusers", "keys": {"schoolId": "up"}}],
        },
        ["mongodb_indexes[0] (studentusers): keys: schoolId: expected one of 1, -1", "found 'up'"],
        id="mongodb-bad-index-direction",
    ),
    pytest.param(
        "mongodb",
        {"mongodb_replicaset_name": "", "mongodb_authorization": False, "mongodb_bind_addresses": ["*"]},
        ["mongodb_bind_addresses: '*' listens on every address"],
        id="mongodb-wildcard-bind",
    ),
    pytest.param(
        "mongodb",
        {"mongodb_replicaset_name": "", "mongodb_authorization": False, "mongodb_port": "mongo"},
        ["mongodb_port", "int"],
        id="mongodb-wrong-type",
    ),
]


@pytest.mark.parametrize(("role", "variables", "expected"), CASES)
def test_bad_input_fails_before_any_change(tmp_path, role, variables, expected):
    result = _run_role(tmp_path, role, variables)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    for fragment in expected:
        assert fragment in output, f"{fragment!r} missing from:\n{output}"
    # Nothing ran that could change the host: the recap shows no change.
    assert "changed=0" in output, output
    # The play stopped before the role's first package task.
    assert f"TASK [webstack.deploy.{role} : Install" not in output, output
    # No secret of the input reached the output.
    for name, value in variables.items():
        if "password" in name and isinstance(value, str):
            assert value not in output, f"{name} printed"
