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
        "backup",
        {"backup_retention_keep_daily": -1},
        ["backup_retention_keep_daily must be 0 or more", "found -1"],
        id="backup-negative-retention",
    ),
    pytest.param(
        "backup",
        {
            "backup_jobs": [{"name": "appdb", "engine": "postgresql", "database": "app"}],
            "backup_s3_url": "https://webstack-backups/prod",
            "backup_repository_password": "fake-password",
        },
        ["backup_s3_url must look like s3://<bucket>[/<prefix>]", "found 'https://webstack-backups/prod'"],
        id="backup-malformed-s3-url",
    ),
    pytest.param(
        "backup",
        {"backup_jobs": [{"name": "appdb", "engine": "mysql"}]},
        ["engine", "mysql", "postgresql, redis, mongodb"],
        id="backup-unknown-engine",
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
