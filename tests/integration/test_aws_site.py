"""site.yml -i inventories/prod against a moto server: the AWS part of the front door.

The prod inventory as shipped holds placeholders (account ID, AMI, certificate, alarm address, image):
site.yml must stop on them before any change. With the values a real account would give (moto's),
check mode on the fresh account changes nothing and says what it would create; the run creates the
network, load balancer, colour Auto Scaling groups, alarms, ECR repository, buckets and the data
and log instances; the aws_ec2 inventory then finds moto's instances in app, mongodb, redis, logs and
prod; a second run and a second check change nothing.

moto's instances cannot be reached (no SSH, no SSM agent), so the runs are limited to the controller
(``--limit aws_control``): the host plays of site.yml then match no host. Everything else, including
the preflight that the required groups hold instances, runs as in production.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_ec2_autoscaling import ACCOUNT, account_vars, clients, moto_with_managed_policies, run_playbook

REPO_ROOT = Path(__file__).resolve().parents[2]
NAME = "webstack-prod"
PLACEHOLDERS = (
    "aws_account_id",
    "ec2_autoscaling_ami_id",
    "ec2_autoscaling_certificate_arn",
    "ec2_autoscaling_alarm_email",
    "ec2_autoscaling_app_image",
    "webstack_domain",
)


@pytest.fixture(scope="module")
def aws_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from moto_with_managed_policies(tmp_path_factory)


@pytest.fixture(scope="module")
def aws(aws_server: str) -> Callable:
    return clients(aws_server)


@pytest.fixture(scope="module")
def real_values(aws: Callable) -> dict:
    return account_vars(aws)


def site(endpoint: str, extra: dict, check: bool = False):
    return run_playbook(endpoint, "site.yml", "prod", extra, check=check, limit="aws_control")


def nothing_exists(aws: Callable) -> bool:
    ec2 = aws("ec2")
    tagged = [{"Name": "tag:Project", "Values": [NAME]}]
    instances = [i for r in ec2.describe_instances(Filters=tagged)["Reservations"] for i in r["Instances"]]
    return not ec2.describe_vpcs(Filters=tagged)["Vpcs"] and not instances


def inventory(endpoint: str, *args: str) -> str:
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), AWS_URL=endpoint)
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", "inventories/prod", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return proc.stdout


@pytest.fixture(scope="module")
def runs(aws_server: str, aws: Callable, real_values: dict) -> dict:
    """placeholders -> wrong account -> check (fresh) -> apply -> graph -> apply -> check."""
    out: dict = {}
    out["placeholders"] = site(aws_server, {})
    out["wrong_account"] = site(aws_server, {**real_values, "aws_account_id": "310987654321"})
    out["nothing_after_refusals"] = nothing_exists(aws)
    out["check_fresh"] = site(aws_server, real_values, check=True)
    out["nothing_after_check"] = nothing_exists(aws)
    out["apply"] = site(aws_server, real_values)
    out["graph"] = inventory(aws_server, "--graph")
    out["list"] = json.loads(inventory(aws_server, "--list"))
    out["apply_again"] = site(aws_server, real_values)
    out["check_again"] = site(aws_server, real_values, check=True)
    for step in ("placeholders", "wrong_account", "check_fresh", "apply", "apply_again", "check_again"):
        print(f"site.yml {step}: rc={out[step].rc} changed={out[step].changed} {out[step].seconds:.1f} s")
    print(f"ansible-inventory -i inventories/prod --graph (moto):\n{out['graph']}")
    return out


def test_placeholders_stop_the_run_naming_each_variable(runs: dict):
    run = runs["placeholders"]
    assert run.rc != 0
    assert run.changed == 0
    message = " ".join(run.failures)
    for name in PLACEHOLDERS:
        assert f"{name} is still a placeholder" in message, message
    assert runs["nothing_after_refusals"]


def test_credentials_of_another_account_stop_the_run(runs: dict):
    run = runs["wrong_account"]
    assert run.rc != 0
    assert run.changed == 0
    assert any(
        f.startswith("Stop when the credentials belong to another account: aws_account_id:") for f in run.failures
    )
    assert any(f"are of account {ACCOUNT}" in f for f in run.failures), run.failures


def test_check_mode_on_a_fresh_account_changes_nothing_and_says_what_it_would_create(runs: dict):
    run = runs["check_fresh"]
    assert run.rc == 0, run.failures or run.output[-3000:]
    assert run.changed > 0
    assert runs["nothing_after_check"]
    said = run.output
    assert "VPC webstack-prod does not exist yet" in said
    assert "instances webstack-prod-mongodb1, webstack-prod-mongodb2, webstack-prod-mongodb3" in said
    assert "check mode: group app has no instance yet" in said


def test_apply_creates_then_a_second_run_and_check_change_nothing(runs: dict):
    assert runs["apply"].rc == 0, runs["apply"].failures or runs["apply"].output[-3000:]
    assert runs["apply"].changed > 10
    for step in ("apply_again", "check_again"):
        run = runs[step]
        assert run.rc == 0, run.failures or run.output[-3000:]
        changed = [name for name, results in run.tasks.items() for r in results if r.get("changed")]
        assert run.changed == 0, (step, changed)


def test_inventory_finds_moto_instances_in_the_shared_groups(runs: dict, aws: Callable):
    groups = runs["list"]

    def hosts(group: str) -> list[str]:
        return sorted(groups.get(group, {}).get("hosts", []))

    assert len(hosts("app")) == 2  # prod: the active colour's minimum
    assert hosts("app") == hosts("colour_blue")
    assert len(hosts("mongodb")) == 3  # the replica set
    assert len(hosts("redis")) == 1
    assert len(hosts("logs")) == 1
    assert hosts("postgresql") == []
    assert hosts("aws_control") == ["localhost"]
    members = set(groups["prod"]["hosts"]) | {h for c in groups["prod"]["children"] for h in hosts(c)}
    instances = set(hosts("app") + hosts("mongodb") + hosts("redis") + hosts("logs"))
    assert instances | {"localhost"} <= members
    running = {
        i["InstanceId"]
        for r in aws("ec2").describe_instances(Filters=[{"Name": "tag:Project", "Values": [NAME]}])["Reservations"]
        for i in r["Instances"]
    }
    assert instances == running
    # ansible_host is the private address, as an AWX provisioning callback matches it.
    some = hosts("mongodb")[0]
    host = groups["_meta"]["hostvars"][some]
    assert str(host["ansible_host"]).count(".") == 3 or "__ansible_unsafe" in host["ansible_host"]
    for group in ("app", "redis", "mongodb", "postgresql", "logs", "aws_control"):
        assert f"@{group}:" in runs["graph"]


def test_a_required_group_without_instances_stops_the_run_naming_it(runs: dict, aws_server: str, real_values: dict):
    start = time.monotonic()
    run = run_playbook(
        aws_server,
        "aws",
        "prod",
        {**real_values, "platform_required_groups": ["app", "postgresql"]},
        limit="aws_control",
        tags="preflight",  # the preflight plays only: the resources exist already
    )
    print(f"aws.yml with postgresql required: rc={run.rc} {time.monotonic() - start:.1f} s")
    assert run.rc != 0
    assert any("postgresql: no instance of prod found in this group" in f for f in run.failures), run.failures
    assert run.changed == 0
