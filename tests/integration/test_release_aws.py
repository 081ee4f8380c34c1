"""playbooks/release_aws.yml and rollback_aws.yml against a moto server, with the staging inventory.

The platform is provisioned once (playbooks/provision_aws.yml); the tests then run in order, each
starting from the state the previous one left, as releases do: release 2.0.0 to green, roll back to
blue, a rollback refused because green's targets are not healthy, a release stopped by an alarm,
deploy.yml and rollback.yml on the fleet, then the two apps of the staging platform released and rolled
back independently (each colour's versions are its tags AppVersion:<app>) and the AWS converge after it.

moto reports every registered target healthy at once and never evaluates alarms, so unhealthy
targets are made by stopping instances (moto then reports them ``unused``) and a firing alarm by
``set_alarm_state``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from test_ec2_autoscaling import account_vars, clients, moto_with_managed_policies, run_playbook, task

REPO_ROOT = Path(__file__).resolve().parents[2]
NAME = "webstack-staging"
FAST = {"release_aws_step_pause": 0, "release_aws_wait_timeout": 60, "release_aws_termination_wait": 600}


@pytest.fixture(scope="module")
def aws_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from moto_with_managed_policies(tmp_path_factory)


@pytest.fixture(scope="module")
def aws(aws_server: str) -> Callable:
    return clients(aws_server)


@pytest.fixture(scope="module")
def base_vars(aws: Callable) -> dict:
    return account_vars(aws)


@pytest.fixture(scope="module")
def platform(aws_server: str, base_vars: dict) -> dict:
    run = run_playbook(aws_server, "provision_aws", "staging", base_vars)
    assert run.rc == 0, run.failures or run.output[-3000:]
    return task(run, "Show what the release path uses")[-1]["msg"]


def forwarding_to(aws: Callable, listener_arn: str) -> str:
    """The target group that gets all the traffic of the listener's default action."""
    action = aws("elbv2").describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]["DefaultActions"][0]
    assert action["Type"] == "forward"
    groups = action.get("ForwardConfig", {}).get("TargetGroups") or [{"TargetGroupArn": action["TargetGroupArn"]}]
    weighted = [g for g in groups if g.get("Weight", 1) > 0]
    assert len(weighted) == 1, groups
    return weighted[0]["TargetGroupArn"]


def state(aws: Callable) -> dict:
    return json.loads(aws("ssm").get_parameter(Name=f"/webstack/{NAME}/bluegreen")["Parameter"]["Value"])


def group(aws: Callable, colour: str) -> dict:
    (found,) = aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[f"{NAME}-{colour}"])[
        "AutoScalingGroups"
    ]
    found["TagMap"] = {t["Key"]: t["Value"] for t in found["Tags"]}
    return found


def versions(found: dict) -> dict[str, str]:
    """{app: version} of a group's (or an instance's) tags AppVersion:<app>."""
    return {k.removeprefix("AppVersion:"): v for k, v in found["TagMap"].items() if k.startswith("AppVersion:")}


def unsafe(value):
    """A value of ansible-inventory's JSON without its unsafe markers ({"__ansible_unsafe": ...})."""
    if isinstance(value, dict):
        if set(value) == {"__ansible_unsafe"}:
            return value["__ansible_unsafe"]
        return {unsafe(k): unsafe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unsafe(v) for v in value]
    return value


def drain_actions(aws: Callable, colour: str) -> list[dict]:
    return aws("autoscaling").describe_scheduled_actions(AutoScalingGroupName=f"{NAME}-{colour}")[
        "ScheduledUpdateGroupActions"
    ]


def test_release_swaps_the_listener_to_the_idle_colour(aws_server: str, aws: Callable, base_vars: dict, platform: dict):
    assert forwarding_to(aws, platform["https_listener_arn"]) == platform["target_group_arns"]["blue"]
    run = run_playbook(
        aws_server,
        "release_aws",
        "staging",
        {**base_vars, **FAST, "release_aws_app": "sample-api", "release_aws_version": "2.0.0"},
    )
    assert run.rc == 0, run.failures or run.output[-3000:]
    swap = task(run, "Swap the HTTPS listener to the new colour")[0]
    print(f"release: swap {swap['elapsed']:.2f} s (module), playbook {run.seconds:.1f} s")

    assert forwarding_to(aws, platform["https_listener_arn"]) == platform["target_group_arns"]["green"]
    green = group(aws, "green")
    assert versions(green) == {"sample-api": "2.0.0"}  # orders: never released, the inventory's version
    assert (green["MinSize"], green["DesiredCapacity"]) == (1, 1)  # staging: one instance
    assert [i["LifecycleState"] for i in green["Instances"]] == ["InService"]
    health = aws("elbv2").describe_target_health(TargetGroupArn=platform["target_group_arns"]["green"])
    registered = {d["Target"]["Id"]: d["TargetHealth"]["State"] for d in health["TargetHealthDescriptions"]}
    assert registered == {green["Instances"][0]["InstanceId"]: "healthy"}

    recorded = state(aws)
    assert recorded["active_colour"] == "green"
    assert recorded["previous_colour"] == "blue"
    assert recorded["previous_target_group_arns"] == [platform["target_group_arns"]["blue"]]
    assert (recorded["app"], recorded["version"], recorded["previous_version"]) == ("sample-api", "2.0.0", "")
    assert (recorded["versions"], recorded["previous_versions"]) == ({"sample-api": "2.0.0"}, {})

    # The old colour keeps its instance for the termination-wait window, then a scheduled action empties it.
    blue = group(aws, "blue")
    assert len(blue["Instances"]) == 1
    (drain,) = drain_actions(aws, "blue")
    assert (drain["MinSize"], drain["DesiredCapacity"]) == (0, 0)
    wait = (drain["StartTime"] - datetime.now(UTC)).total_seconds()
    assert 400 < wait < 700


def staging_inventory(aws_server: str) -> dict:
    """`ansible-inventory --list` of inventories/staging against the moto server (its aws_ec2 source)."""
    env = dict(os.environ, ANSIBLE_CONFIG=str(REPO_ROOT / "ansible.cfg"), AWS_URL=aws_server)
    out = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-inventory"), "-i", "inventories/staging", "--list"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return json.loads(out)


def test_inventory_finds_the_instances_of_both_colours(aws_server: str, platform: dict):
    inventory = staging_inventory(aws_server)
    assert len(inventory["colour_green"]["hosts"]) == 1
    assert len(inventory["colour_blue"]["hosts"]) == 1
    assert inventory["version_sample_api_2_0_0"]["hosts"] == inventory["colour_green"]["hosts"]
    green_host = inventory["colour_green"]["hosts"][0]
    assert unsafe(inventory["_meta"]["hostvars"][green_host]["webstack_app_versions"]) == {"sample-api": "2.0.0"}
    assert "localhost" in inventory["aws_control"]["hosts"]


def test_rollback_points_the_listener_back(aws_server: str, aws: Callable, base_vars: dict, platform: dict):
    run = run_playbook(aws_server, "rollback_aws", "staging", {**base_vars, **FAST})
    assert run.rc == 0, run.failures or run.output[-3000:]
    swap = task(run, "Swap the HTTPS listener back")[0]
    print(f"rollback: swap {swap['elapsed']:.2f} s (module), playbook {run.seconds:.1f} s")

    assert forwarding_to(aws, platform["https_listener_arn"]) == platform["target_group_arns"]["blue"]
    recorded = state(aws)
    assert (recorded["active_colour"], recorded["previous_colour"]) == ("blue", "green")
    assert recorded["event"] == "rollback"
    assert drain_actions(aws, "blue") == []  # blue serves again: its scale-in is cancelled
    assert len(drain_actions(aws, "green")) == 1


def test_rollback_refused_while_the_previous_colour_is_unhealthy(
    aws_server: str, aws: Callable, base_vars: dict, platform: dict
):
    ec2 = aws("ec2")
    green_instances = [i["InstanceId"] for i in group(aws, "green")["Instances"]]
    ec2.stop_instances(InstanceIds=green_instances)
    try:
        start = time.monotonic()
        run = run_playbook(aws_server, "rollback_aws", "staging", {**base_vars, **FAST, "release_aws_wait_timeout": 3})
        assert run.rc != 0
        assert any("Swap the HTTPS listener back" in failure for failure in run.failures), run.failures
        assert time.monotonic() - start < 120
    finally:
        ec2.start_instances(InstanceIds=green_instances)
    assert forwarding_to(aws, platform["https_listener_arn"]) == platform["target_group_arns"]["blue"]
    assert state(aws)["active_colour"] == "blue"


def test_release_stopped_by_a_firing_alarm(aws_server: str, aws: Callable, base_vars: dict, platform: dict):
    cw = aws("cloudwatch")
    alarm = f"{NAME}-alb-5xx-rate"
    cw.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="test: 5xx rate above 1 %")
    try:
        run = run_playbook(
            aws_server,
            "release_aws",
            "staging",
            {**base_vars, **FAST, "release_aws_app": "sample-api", "release_aws_version": "3.0.0"},
        )
    finally:
        cw.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="test: back to normal")
    assert run.rc != 0
    assert any("Stop the release" in failure for failure in run.failures), run.failures
    swap = task(run, "Swap the HTTPS listener to the new colour")[0]
    assert alarm in swap.get("firing_alarms", []) or alarm in str(swap.get("msg")), swap
    assert forwarding_to(aws, platform["https_listener_arn"]) == platform["target_group_arns"]["blue"]
    green = group(aws, "green")
    assert green["DesiredCapacity"] == 0  # the failed release put the idle colour back to zero
    assert state(aws)["active_colour"] == "blue"


def listener_moves(aws: Callable, listener_arn: str, target: str) -> tuple[threading.Thread, dict]:
    """Watch the listener from now on; ``seen['seconds']`` is when it first forwards all traffic to ``target``."""
    seen: dict = {"seconds": None}
    start = time.monotonic()

    def watch() -> None:
        while time.monotonic() - start < 300 and seen["seconds"] is None:
            try:
                if forwarding_to(aws, listener_arn) == target:
                    seen["seconds"] = round(time.monotonic() - start, 2)
                    return
            except AssertionError:
                pass  # a weighted step in between
            time.sleep(0.1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread, seen


def test_deploy_and_rollback_playbooks_use_the_release_role_on_an_auto_scaling_fleet(
    aws_server: str, aws: Callable, base_vars: dict, platform: dict
):
    fleet = {**base_vars, **FAST, "webstack_release_kind": "asg"}
    assert forwarding_to(aws, platform["https_listener_arn"]) == platform["target_group_arns"]["blue"]
    run = run_playbook(aws_server, "deploy", "staging", {**fleet, "app": "sample-api", "version": "4.0.0"})
    assert run.rc == 0, run.failures or run.output[-3000:]
    assert forwarding_to(aws, platform["https_listener_arn"]) == platform["target_group_arns"]["green"]
    assert versions(group(aws, "green")) == {"sample-api": "4.0.0"}
    released = state(aws)
    assert (released["version"], released["listener_arn"]) == ("4.0.0", platform["https_listener_arn"])

    watcher, seen = listener_moves(aws, platform["https_listener_arn"], platform["target_group_arns"]["blue"])
    run = run_playbook(aws_server, "rollback", "staging", fleet)
    watcher.join(timeout=10)
    assert run.rc == 0, run.failures or run.output[-3000:]
    assert forwarding_to(aws, platform["https_listener_arn"]) == platform["target_group_arns"]["blue"]
    recorded = state(aws)
    assert (recorded["active_colour"], recorded["event"], recorded["version"]) == (
        "blue",
        "rollback",
        released["previous_version"],
    )
    assert drain_actions(aws, "blue") == []
    print(
        f"rollback (warm, moto): listener on the previous group {seen['seconds']} s after the playbook started, "
        f"playbook {run.seconds:.1f} s"
    )
    assert seen["seconds"] is not None


def colour_versions(aws: Callable, colour: str) -> list[dict[str, str]]:
    """{app: version} of each instance of the colour's group, from the instance's own tags (what it reads at boot)."""
    ids = [i["InstanceId"] for i in group(aws, colour)["Instances"]]
    found = (
        [i for r in aws("ec2").describe_instances(InstanceIds=ids)["Reservations"] for i in r["Instances"]]
        if ids
        else []
    )
    return [versions({"TagMap": {t["Key"]: t["Value"] for t in i.get("Tags", [])}}) for i in found]


def test_several_apps_are_released_and_rolled_back_independently(
    aws_server: str, aws: Callable, base_vars: dict, platform: dict
):
    """orders 5.0.0, sample-api 6.0.0, orders 7.0.0, then a rollback of orders: orders is back at 5.0.0 while
    sample-api keeps 6.0.0; a rollback of sample-api (not what moved) and unknown apps stop before any change;
    the AWS converge after it all changes nothing."""
    fleet = {**base_vars, **FAST, "webstack_release_kind": "asg"}
    listener, tgs = platform["https_listener_arn"], platform["target_group_arns"]
    assert forwarding_to(aws, listener) == tgs["blue"]  # where the previous case left it; blue has no version tags
    steps = [("orders", "5.0.0", "green"), ("sample-api", "6.0.0", "blue"), ("orders", "7.0.0", "green")]
    for app, version, colour in steps:
        run = run_playbook(aws_server, "deploy", "staging", {**fleet, "app": app, "version": version})
        assert run.rc == 0, run.failures or run.output[-3000:]
        print(f"deploy.yml {app} {version}: playbook {run.seconds:.1f} s")
        assert forwarding_to(aws, listener) == tgs[colour]
    # The live colour: orders at its new version, sample-api at its live one; the previous colour warm.
    assert versions(group(aws, "green")) == {"orders": "7.0.0", "sample-api": "6.0.0"}
    assert colour_versions(aws, "green") == [{"orders": "7.0.0", "sample-api": "6.0.0"}]
    assert colour_versions(aws, "blue") == [{"orders": "5.0.0", "sample-api": "6.0.0"}]
    released = state(aws)
    assert (released["app"], released["version"], released["previous_version"]) == ("orders", "7.0.0", "5.0.0")
    assert released["versions"] == {"orders": "7.0.0", "sample-api": "6.0.0"}
    assert released["previous_versions"] == {"orders": "5.0.0", "sample-api": "6.0.0"}

    # Unknown apps, and a release with no app named on a platform of two, stop before any change naming `app`.
    for bad in ({"app": "billing", "version": "1.0.0"}, {"version": "1.0.0"}):
        run = run_playbook(aws_server, "deploy", "staging", {**fleet, **bad})
        assert run.rc != 0
        assert run.changed == 0
        assert any("-e app=<one of sample-api, orders>" in f for f in run.failures), run.failures
    run = run_playbook(aws_server, "rollback", "staging", {**fleet, "app": "billing"})
    assert run.rc != 0
    assert run.changed == 0
    assert any("app (release_aws_app): billing is not an app of this platform" in f for f in run.failures), run.failures
    assert state(aws) == released

    watcher, seen = listener_moves(aws, listener, tgs["blue"])
    run = run_playbook(aws_server, "rollback", "staging", {**fleet, "app": "orders"})
    watcher.join(timeout=10)
    assert run.rc == 0, run.failures or run.output[-3000:]
    print(
        f"rollback of orders (warm, moto): listener on the previous group {seen['seconds']} s after the playbook "
        f"started, playbook {run.seconds:.1f} s"
    )
    assert seen["seconds"] is not None
    assert forwarding_to(aws, listener) == tgs["blue"]
    assert colour_versions(aws, "blue") == [{"orders": "5.0.0", "sample-api": "6.0.0"}]
    recorded = state(aws)
    assert (recorded["event"], recorded["app"], recorded["version"], recorded["previous_version"]) == (
        "rollback",
        "orders",
        "5.0.0",
        "7.0.0",
    )
    assert recorded["versions"] == {"orders": "5.0.0", "sample-api": "6.0.0"}

    # sample-api did not move in the last release: rolling it back would move orders; refused, nothing changed.
    run = run_playbook(aws_server, "rollback", "staging", {**fleet, "app": "sample-api"})
    assert run.rc != 0
    assert run.changed == 0
    assert any("differs from the live one in orders, not in sample-api alone" in f for f in run.failures), run.failures
    assert forwarding_to(aws, listener) == tgs["blue"]

    # The inventory (what site.yml and the instances' boot read) gives each colour's versions.
    inventory = staging_inventory(aws_server)
    hostvars = inventory["_meta"]["hostvars"]
    (blue_host,) = inventory["colour_blue"]["hosts"]
    assert unsafe(hostvars[blue_host]["webstack_app_versions"]) == {"orders": "5.0.0", "sample-api": "6.0.0"}
    assert blue_host in inventory["version_orders_5_0_0"]["hosts"]

    # The AWS converge after the releases keeps every version and the live colour: nothing changes.
    tags_before = {c: group(aws, c)["TagMap"] for c in ("blue", "green")}
    run = run_playbook(aws_server, "provision_aws", "staging", base_vars)
    assert run.rc == 0, run.failures or run.output[-3000:]
    changed = [name for name, results in run.tasks.items() for r in results if r.get("changed")]
    assert run.changed == 0, changed
    print(f"provision_aws after the releases: changed={run.changed}, {run.seconds:.1f} s")
    assert {c: group(aws, c)["TagMap"] for c in ("blue", "green")} == tags_before
    assert forwarding_to(aws, listener) == tgs["blue"]
    assert state(aws) == recorded
