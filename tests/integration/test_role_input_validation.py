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
        "backup",
        {
            "backup_jobs": [
                {"name": "docs", "engine": "mongodb", "uri": "mongodb://db1,db2/app?replicaSet=rs0", "oplog": True}
            ],
            "backup_s3_url": "s3://webstack-backups/prod",
            "backup_repository_password": "fake-password",
        },
        ["backup job 0 (docs, engine mongodb) is invalid", "with oplog, without a database in its path"],
        id="backup-mongodb-oplog-of-one-database",
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
    pytest.param(
        "postgresql",
        {"postgresql_listen_addresses": ["127.0.0.1", "*"]},
        ["postgresql_listen_addresses: '*' listens on every address"],
        id="postgresql-wildcard-listen",
    ),
    pytest.param(
        "postgresql",
        {"postgresql_port": "postgres"},
        ["postgresql_port", "int"],
        id="postgresql-wrong-type",
    ),
    pytest.param(
        "postgresql",
        {"postgresql_users": [{"name": "webstack", "password": "short-fake-pw"}]},
        ["postgresql_users: password: expected at least 16 characters", "for webstack"],
        id="postgresql-short-password",
    ),
    pytest.param(
        "postgresql",
        {
            "postgresql_users": [{"name": "webstack", "password": "fake-postgresql-password-for-tests"}],
            "postgresql_databases": [{"name": "webstack", "owner": "nobody"}],
        },
        ["postgresql_databases: owner: expected a user of postgresql_users or postgres, found nobody"],
        id="postgresql-unknown-owner",
    ),
    pytest.param(
        "aws_storage",
        {"aws_storage_backup_bucket": "Backups_Of_Prod"},
        ["aws_storage_backup_bucket", "Backups_Of_Prod", "expected S3 bucket names"],
        id="aws_storage-bad-bucket-name",
    ),
    pytest.param(
        "aws_instances",
        {"aws_instances_list": [{"name": "db1", "roles": ["cassandra"]}]},
        ["roles", "cassandra", "redis, mongodb, postgresql, logs"],
        id="aws_instances-unknown-host-role",
    ),
    pytest.param(
        "aws_instances",
        {"aws_instances_list": [{"name": "db1", "roles": ["redis"]}], "aws_instances_ami_id": "ami-REPLACE"},
        ["aws_instances_ami_id", "ami-REPLACE", "expected an AMI ID"],
        id="aws_instances-bad-ami",
    ),
    pytest.param(
        "log_collector",
        {
            "platform_environment": "local",
            "log_collector_permitted_peers": ["app1"],
            "log_collector_client_cidrs": ["0.0.0.0/0"],
        },
        ["log_collector_client_cidrs", "never a /0", "0.0.0.0/0"],
        id="log-collector-open-to-the-world",
    ),
    pytest.param(
        "log_collector",
        {
            "platform_environment": "local",
            "log_collector_permitted_peers": ["app1"],
            "log_collector_client_cidrs": ["10.0.0.0/8"],
            "log_collector_port": "relp",
        },
        ["log_collector_port", "int"],
        id="log-collector-wrong-type",
    ),
    pytest.param(
        "log_shipping",
        {"platform_environment": "local"},
        ["log_shipping_collector_name", "is the logs group empty?"],
        id="log-shipping-without-collector",
    ),
    pytest.param(
        "log_shipping",
        {
            "platform_environment": "local",
            "log_shipping_collector_name": "logs1",
            "log_shipping_apps": [{"name": "Bad App", "uid": 10001, "gid": 10001}],
        },
        ["log_shipping_apps", "Bad App"],
        id="log-shipping-bad-app-name",
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
