"""webstack.deploy.target_group_swap against moto's ELBv2, EC2 and CloudWatch APIs.

moto reports registered, running instances healthy at once and never evaluates alarms, so the
tests make targets unhealthy by stopping their instance (ELB then says ``unused``,
``Target.InvalidState``) and make alarms fire with ``set_alarm_state``.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass

import pytest

MODULE = "webstack.deploy.target_group_swap"


@dataclass
class Alb:
    arn: str
    name: str
    listener_arn: str
    blue: str  # target group that has the traffic at the start
    green: str  # target group with one healthy target
    vpc_id: str


def forward_weights(elbv2, listener_arn: str) -> dict[str, int]:
    action = next(
        a
        for a in elbv2.describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]["DefaultActions"]
        if a["Type"] == "forward"
    )
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups")
    if groups:
        return {g["TargetGroupArn"]: g.get("Weight", 1) for g in groups}
    return {action["TargetGroupArn"]: 1}


@pytest.fixture(scope="module")
def network(aws_client) -> tuple[str, list[str], str]:
    """(VPC, two subnets in two zones, an AMI) shared by the tests of this file."""
    ec2 = aws_client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.20.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"][
            "SubnetId"
        ]
        for i, az in enumerate("ab")
    ]
    image = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    return vpc, subnets, image


@pytest.fixture
def alb(aws_client, network) -> Alb:
    """An ALB whose HTTP listener forwards to 'blue'; 'green' has one running (healthy) instance."""
    ec2, elbv2 = aws_client("ec2"), aws_client("elbv2")
    vpc, subnets, image = network
    suffix = uuid.uuid4().hex[:6]
    lb = elbv2.create_load_balancer(Name=f"tgswap-{suffix}", Subnets=subnets, Type="application")["LoadBalancers"][0]
    groups = {}
    for color in ("blue", "green"):
        groups[color] = elbv2.create_target_group(
            Name=f"tgswap-{color}-{suffix}", Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="instance"
        )["TargetGroups"][0]["TargetGroupArn"]
        instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1, SubnetId=subnets[0])["Instances"][0][
            "InstanceId"
        ]
        elbv2.register_targets(TargetGroupArn=groups[color], Targets=[{"Id": instance, "Port": 8080}])
    listener = elbv2.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "forward", "TargetGroupArn": groups["blue"]}],
    )["Listeners"][0]
    return Alb(
        lb["LoadBalancerArn"], lb["LoadBalancerName"], listener["ListenerArn"], groups["blue"], groups["green"], vpc
    )


def swap(name: str, **args) -> dict:
    return {"name": name, MODULE: args}


def test_check_apply_apply_check_then_rollback(run_play, alb, aws_client):
    elbv2 = aws_client("elbv2")
    to_green = {"listener_arn": alb.listener_arn, "target_group_arn": alb.green, "wait_timeout": 10}
    result = run_play(
        [
            {**swap("check", **to_green), "check_mode": True},
            {**swap("apply", **to_green), "register": "swapped"},
            swap("apply again", **to_green),
            {**swap("check again", **to_green), "check_mode": True},
            swap(
                "rollback",
                load_balancer_name=alb.name,
                listener_port=80,
                target_group_arn="{{ swapped.previous_target_group_arns[0] }}",
            ),
            swap(
                "rollback again",
                load_balancer_name=alb.name,
                listener_port=80,
                target_group_arn=alb.blue,
            ),
        ]
    )
    assert result.rc == 0, result.output
    check, apply, again, check_again, rollback, rollback_again = (
        result.tasks[n] for n in ("check", "apply", "apply again", "check again", "rollback", "rollback again")
    )

    assert check["changed"] is True
    assert check["steps_applied"] == [100]
    assert check["previous_target_group_arns"] == [alb.blue]
    assert check["diff"]["before"]["forward_weights"] == {alb.blue: 1}
    assert check["diff"]["after"]["forward_weights"] == {alb.green: 1}
    # check mode changed nothing: the apply still found blue in front
    assert apply["actions"]["before"] == check["actions"]["before"]

    assert apply["changed"] is True
    assert apply["active_target_group_arn"] == alb.green
    assert apply["previous_target_group_arns"] == [alb.blue]
    assert apply["target_health"]["healthy"] == 1

    for unchanged in (again, check_again, rollback_again):
        assert unchanged["changed"] is False, unchanged
        assert unchanged["previous_target_group_arns"] == []
        assert unchanged["actions"]["before"] == unchanged["actions"]["after"]
        assert "diff" not in unchanged or unchanged["diff"]["before"] == unchanged["diff"]["after"]
    assert again["active_target_group_arn"] == alb.green

    assert rollback["changed"] is True
    assert rollback["listener_arn"] == alb.listener_arn
    assert rollback["previous_target_group_arns"] == [alb.green]
    assert rollback["diff"]["after"]["forward_weights"] == {alb.blue: 1}
    assert forward_weights(elbv2, alb.listener_arn) == {alb.blue: 1}
    print(
        f"\ntarget_group_swap against moto: swap {apply['elapsed']}s, rollback {rollback['elapsed']}s in the module; "
        f"tasks took {result.durations}"
    )


def test_swap_refused_while_targets_are_unhealthy(run_play, alb, aws_client):
    ec2, elbv2 = aws_client("ec2"), aws_client("elbv2")
    target = elbv2.describe_target_health(TargetGroupArn=alb.green)["TargetHealthDescriptions"][0]["Target"]["Id"]
    ec2.stop_instances(InstanceIds=[target])
    empty = elbv2.create_target_group(
        Name=f"tgswap-empty-{uuid.uuid4().hex[:6]}", Protocol="HTTP", Port=8080, VpcId=alb.vpc_id
    )["TargetGroups"][0]["TargetGroupArn"]
    common = {"listener_arn": alb.listener_arn, "wait_timeout": 2, "poll_interval": 1}
    started = time.monotonic()
    result = run_play(
        [
            {**swap("stopped target", target_group_arn=alb.green, **common), "ignore_errors": True},
            {**swap("no targets", target_group_arn=empty, **common), "ignore_errors": True},
            {**swap("check stopped target", target_group_arn=alb.green, **common), "check_mode": True},
            swap("forced without health check", target_group_arn=empty, min_healthy_targets=0, **common),
        ]
    )
    elapsed = time.monotonic() - started
    stopped, no_targets, check, forced = (
        result.tasks[n] for n in ("stopped target", "no targets", "check stopped target", "forced without health check")
    )
    assert stopped["failed"] is True, stopped
    assert "Refusing to move traffic" in stopped["msg"]
    assert "expected at least 1 healthy targets within 2s" in stopped["msg"]
    assert f"0 of 1 targets healthy: {target}:8080 unused (Target.InvalidState)" in stopped["msg"]
    assert "Nothing was changed" in stopped["msg"]
    assert stopped["target_health"]["targets"][0]["state"] == "unused"
    assert stopped["changed"] is False

    assert no_targets["failed"] is True
    assert "no registered targets" in no_targets["msg"]
    assert "Register the new release's targets" in no_targets["msg"]

    # check mode does not wait; it warns and predicts the change
    assert check["changed"] is True
    assert any("a real run waits up to 2s" in w for w in check.get("warnings", [])), check

    assert forced["changed"] is True
    assert forward_weights(elbv2, alb.listener_arn) == {empty: 1}
    assert elapsed < 60


def test_weighted_shift_reverted_by_alarm(run_play, alb, aws_client):
    elbv2, cloudwatch = aws_client("elbv2"), aws_client("cloudwatch")
    alarm = f"tgswap-5xx-{uuid.uuid4().hex[:6]}"
    cloudwatch.put_metric_alarm(
        AlarmName=alarm,
        MetricName="HTTPCode_Target_5XX_Count",
        Namespace="AWS/ApplicationELB",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=10,
        ComparisonOperator="GreaterThanThreshold",
    )
    cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="OK", StateReason="test starts quiet")

    seen: list[dict[str, int]] = []

    def fire_alarm_during_first_step():
        # Like a real 5xx burst: the alarm fires once green gets its first share of traffic.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            weights = forward_weights(elbv2, alb.listener_arn)
            if alb.green in weights:
                seen.append(weights)
                cloudwatch.set_alarm_state(AlarmName=alarm, StateValue="ALARM", StateReason="5xx burst on green")
                return
            time.sleep(0.2)

    watcher = threading.Thread(target=fire_alarm_during_first_step, daemon=True)
    watcher.start()
    canary = {
        "listener_arn": alb.listener_arn,
        "target_group_arn": alb.green,
        "steps": [10, 50, 100],
        "bake_time": 30,
        "poll_interval": 1,
        "alarm_names": [alarm],
    }
    result = run_play(
        [
            {**swap("canary", **canary), "ignore_errors": True},
            {**swap("canary while alarm fires", **canary), "ignore_errors": True},
        ]
    )
    watcher.join(timeout=5)
    reverted, refused = result.tasks["canary"], result.tasks["canary while alarm fires"]

    # green really got 10% (weights 10/90) before the alarm fired
    assert seen == [{alb.green: 10, alb.blue: 90}]
    assert reverted["failed"] is True, reverted
    assert reverted["rolled_back"] is True
    assert reverted["changed"] is True
    assert reverted["steps_applied"] == [10]
    assert reverted["firing_alarms"] == [alarm]
    assert f"Alarms ['{alarm}'] are in state ALARM at the 10% step" in reverted["msg"]
    assert reverted["actions"]["after"] == reverted["actions"]["before"]
    assert reverted["elapsed"] < 30, "the alarm must cut the bake time short"
    assert forward_weights(elbv2, alb.listener_arn) == {alb.blue: 1}

    assert refused["failed"] is True
    assert refused["changed"] is False
    assert "Refusing to start the shift" in refused["msg"]
    assert refused["steps_applied"] == []
    assert forward_weights(elbv2, alb.listener_arn) == {alb.blue: 1}


def test_weighted_shift_completes(run_play, alb, aws_client):
    result = run_play(
        [
            swap(
                "canary",
                listener_arn=alb.listener_arn,
                target_group_arn=alb.green,
                steps=[25, 100],
                bake_time=1,
                poll_interval=1,
            ),
            {
                **swap("bad steps", listener_arn=alb.listener_arn, target_group_arn=alb.blue, steps=[50, 20]),
                "ignore_errors": True,
            },
        ]
    )
    canary, bad = result.tasks["canary"], result.tasks["bad steps"]
    assert canary["changed"] is True
    assert canary["steps_applied"] == [25, 100]
    assert forward_weights(aws_client("elbv2"), alb.listener_arn) == {alb.green: 1}
    assert bad["failed"] is True
    assert "steps: percents must increase strictly, got [50, 20]" in bad["msg"]
