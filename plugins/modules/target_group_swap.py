#!/usr/bin/python
# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: target_group_swap
short_description: Move an ALB listener's traffic to a target group, guarded by target health and alarms
version_added: 0.1.0
description:
  - Points the default action of an Application Load Balancer listener at O(target_group_arn), the blue/green
    switch of a release. Listener rules are left alone.
  - Before any traffic moves, checks the health of the target group's targets (C(DescribeTargetHealth)) and
    waits up to O(wait_timeout) seconds for at least O(min_healthy_targets) of them to be healthy. If they are
    not, the task fails showing the health it saw, and nothing changes.
  - With O(steps), shifts traffic gradually through a weighted forward action (for example 10%, 50%, then 100%),
    waiting O(bake_time) seconds after each step. While baking, watches O(alarm_names) and the target group's
    health; when an alarm is in state C(ALARM), or the healthy targets drop below O(min_healthy_targets), the
    listener's default actions are put back exactly as they were before the task, and the task fails.
  - When the listener already sends all traffic to O(target_group_arn), nothing changes.
  - Returns the groups that had the traffic (RV(previous_target_group_arns)), so rolling back is the same module
    pointed at the previous group.
options:
  listener_arn:
    description:
      - ARN of the listener whose default action is switched.
      - Mutually exclusive with O(load_balancer_name) and O(listener_port); one of the two ways is required.
    type: str
  load_balancer_name:
    description:
      - Name of the load balancer, with O(listener_port) to find the listener.
    type: str
  listener_port:
    description:
      - Port of the listener of O(load_balancer_name).
    type: int
  target_group_arn:
    description:
      - ARN of the target group that should receive the traffic.
    type: str
    required: true
  min_healthy_targets:
    description:
      - How many of the group's targets must be C(healthy) before traffic moves, and stay so while baking.
      - V(0) skips the health check (a group without targets then receives traffic).
    type: int
    default: 1
  wait_timeout:
    description:
      - Seconds to wait for O(min_healthy_targets) healthy targets before failing.
    type: int
    default: 300
  steps:
    description:
      - Percents of the traffic O(target_group_arn) gets at each step, strictly increasing and ending with V(100),
        for example V([10, 50, 100]). Unset means one step to V(100).
      - Traffic not yet shifted stays with the groups that had it, in their previous proportions.
      - Steps at or below the share the group already has are skipped, so a shift that stopped half-way resumes.
      - Without a group that has traffic now (the listener did not forward), the shift is a single step to V(100).
    type: list
    elements: int
  bake_time:
    description:
      - Seconds to wait after each step (the last one included) while watching O(alarm_names) and target health.
    type: int
    default: 0
  alarm_names:
    description:
      - CloudWatch metric or composite alarms that stop the shift. Any of them in state C(ALARM) after a step or
        during its bake time puts the previous default actions back and fails the task.
      - All must exist. If one is already in C(ALARM) before the task, it fails without moving traffic; to
        shift anyway (a fix for what makes it fire), leave out O(alarm_names).
    type: list
    elements: str
    default: []
  poll_interval:
    description:
      - Seconds between two checks of target health or alarms while waiting and baking.
    type: int
    default: 5
notes:
  - IAM permissions used are C(elasticloadbalancing:DescribeListeners), C(elasticloadbalancing:DescribeLoadBalancers)
    (with O(load_balancer_name)), C(elasticloadbalancing:DescribeTargetGroups),
    C(elasticloadbalancing:DescribeTargetHealth), C(elasticloadbalancing:ModifyListener), and
    C(cloudwatch:DescribeAlarms) with O(alarm_names).
  - ELB health-checks only target groups the load balancer uses. Targets of a group no listener or rule forwards
    to are C(unused) with reason C(Target.NotInUse), which this module does not count as healthy; attach the new
    group to the load balancer (a rule of a test listener, for instance) before the swap.
  - In check mode the listener, target group and alarms are validated and the health is looked at once, without
    waiting; too few healthy targets then give a warning instead of a failure, since a real run would wait for them.
  - A forward action holds at most 5 target groups.
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details:
      - The diff shows the forward weights and the default actions of the listener before and after.
  idempotent:
    support: full
author:
  - webstack.deploy maintainers (@webstack)
seealso:
  - module: amazon.aws.elb_application_lb
    description: Manages the load balancer, its listeners and rules as a whole.
  - module: community.aws.elb_target_group
    description: Creates target groups and registers targets.
  - module: webstack.deploy.ecr_push
extends_documentation_fragment:
  - webstack.deploy.attributes
  - webstack.deploy.attributes.aws
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Send all traffic of the HTTPS listener to green once two targets are healthy
  webstack.deploy.target_group_swap:
    load_balancer_name: webstack-prod
    listener_port: 443
    target_group_arn: "{{ green_target_group_arn }}"
    min_healthy_targets: 2
    wait_timeout: 600
  register: swap

- name: Roll back - the same module pointed at what had the traffic
  webstack.deploy.target_group_swap:
    listener_arn: "{{ swap.listener_arn }}"
    target_group_arn: "{{ swap.previous_target_group_arns[0] }}"
  when: rollback | default(false) | bool

- name: Canary - 10%, then 50%, then all, five minutes each, stopped by the 5xx alarm
  module_defaults:
    group/webstack.deploy.aws:
      region: eu-west-1
  webstack.deploy.target_group_swap:
    listener_arn: "{{ listener_arn }}"
    target_group_arn: "{{ green_target_group_arn }}"
    steps: [10, 50, 100]
    bake_time: 300
    alarm_names:
      - webstack-prod-5xx
      - webstack-prod-latency-p99
"""

RETURN = r"""
listener_arn:
  description: ARN of the listener.
  returned: always
  type: str
  sample: arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/webstack-prod/50dc6c495c0c9188/f2f7dc8e
load_balancer_arn:
  description: ARN of the listener's load balancer.
  returned: always
  type: str
  sample: arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/webstack-prod/50dc6c495c0c9188
active_target_group_arn:
  description: The target group that takes (in check mode, would take) all the traffic after the task.
  returned: success
  type: str
  sample: arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/green/73e2d6bc24d8a067
previous_target_group_arns:
  description:
    - Target groups that had traffic before the task, heaviest first; the first is where a rollback points.
    - Empty when the group had all the traffic already.
  returned: always
  type: list
  elements: str
  sample: [arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/blue/6d0ecf831eec9f09]
actions:
  description: The listener's default actions before and after the task (after a rollback, the restored ones).
  returned: always
  type: dict
  contains:
    before:
      description: Default actions as they were.
      type: list
      elements: dict
    after:
      description: Default actions as they are (in check mode, would be).
      type: list
      elements: dict
  sample:
    before:
      - Type: forward
        Order: 1
        TargetGroupArn: arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/blue/6d0ecf831eec9f09
    after:
      - Type: forward
        Order: 1
        TargetGroupArn: arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/green/73e2d6bc24d8a067
        ForwardConfig:
          TargetGroups:
            - TargetGroupArn: arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/green/73e2d6bc24d8a067
              Weight: 1
          TargetGroupStickinessConfig:
            Enabled: false
steps_applied:
  description: Percents of the steps taken (in check mode, that would be taken).
  returned: always
  type: list
  elements: int
  sample: [10, 50, 100]
target_health:
  description: Health of O(target_group_arn)'s targets when it was last looked at.
  returned: when the target group exists
  type: dict
  contains:
    healthy:
      description: Number of healthy targets.
      type: int
    total:
      description: Number of registered targets.
      type: int
    targets:
      description: Each target with C(id), C(port), C(state), C(reason) and C(description).
      type: list
      elements: dict
  sample:
    healthy: 1
    total: 2
    targets:
      - id: i-0a1b2c3d4e5f60718
        port: 8080
        state: healthy
        reason: null
        description: null
      - id: i-0f1e2d3c4b5a69788
        port: 8080
        state: unhealthy
        reason: Target.ResponseCodeMismatch
        description: Health checks failed with these codes [502]
rolled_back:
  description: Whether the previous default actions were put back after an alarm or a health drop.
  returned: always
  type: bool
  sample: false
firing_alarms:
  description: Alarms of O(alarm_names) found in state C(ALARM).
  returned: always
  type: list
  elements: str
  sample: []
elapsed:
  description: Seconds the module took, waiting and baking included.
  returned: always
  type: float
  sample: 612.4
"""

import time

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:
    BotoCoreError = ClientError = Exception  # Handled by AnsibleAWSModule

from ansible_collections.amazon.aws.plugins.module_utils.botocore import is_boto3_error_code
from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.webstack.deploy.plugins.module_utils.listener_swap import (
    TargetHealth,
    firing_alarms,
    forward_weights,
    missing_alarms,
    plan_shift,
    sorted_actions,
    validate_steps,
    writable,
)
from ansible_collections.webstack.deploy.plugins.module_utils.waiting import poll_until, watch


class Swap:
    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.started = time.monotonic()
        retry = AWSRetry.jittered_backoff(retries=10)
        self.elbv2 = module.client("elbv2", retry_decorator=retry)
        self.cloudwatch = module.client("cloudwatch", retry_decorator=retry) if self.params["alarm_names"] else None
        self.result = dict(
            changed=False,
            previous_target_group_arns=[],
            steps_applied=[],
            rolled_back=False,
            firing_alarms=[],
        )

    def fail(self, msg, **extra):
        self.result["elapsed"] = round(time.monotonic() - self.started, 3)
        self.module.fail_json(msg=msg, **dict(self.result, **extra))

    def fail_aws(self, error, msg):
        self.result["elapsed"] = round(time.monotonic() - self.started, 3)
        self.module.fail_json_aws(error, msg=msg, **self.result)

    # -- lookups ------------------------------------------------------------------------------
    def listener(self):
        p = self.params
        if p["listener_arn"]:
            try:
                return self.elbv2.describe_listeners(ListenerArns=[p["listener_arn"]], aws_retry=True)["Listeners"][0]
            except is_boto3_error_code("ListenerNotFound"):
                self.fail(f"Listener {p['listener_arn']} does not exist (in region {self.module.region}).")
            except (BotoCoreError, ClientError) as e:  # pylint: disable=duplicate-except
                self.fail_aws(e, f"Could not describe listener {p['listener_arn']}")
        try:
            lb = self.elbv2.describe_load_balancers(Names=[p["load_balancer_name"]], aws_retry=True)["LoadBalancers"][0]
        except is_boto3_error_code("LoadBalancerNotFound"):
            self.fail(
                f"Load balancer {p['load_balancer_name']!r} does not exist in region {self.module.region}; "
                "expected the name of an application load balancer."
            )
        except (BotoCoreError, ClientError) as e:  # pylint: disable=duplicate-except
            self.fail_aws(e, f"Could not describe load balancer {p['load_balancer_name']}")
        try:
            paginator = self.elbv2.get_paginator("describe_listeners")
            listeners = paginator.paginate(LoadBalancerArn=lb["LoadBalancerArn"]).build_full_result()["Listeners"]
        except (BotoCoreError, ClientError) as e:
            self.fail_aws(e, f"Could not list the listeners of {p['load_balancer_name']}")
        for listener in listeners:
            if listener["Port"] == p["listener_port"]:
                return listener
        ports = sorted(x["Port"] for x in listeners)
        self.fail(
            f"Load balancer {p['load_balancer_name']!r} has no listener on port {p['listener_port']}; "
            f"its listeners are on ports {ports}."
        )

    def check_target_group(self):
        arn = self.params["target_group_arn"]
        try:
            return self.elbv2.describe_target_groups(TargetGroupArns=[arn], aws_retry=True)["TargetGroups"][0]
        except is_boto3_error_code("TargetGroupNotFound"):
            self.fail(f"Target group {arn} does not exist (in region {self.module.region}).")
        except (BotoCoreError, ClientError) as e:  # pylint: disable=duplicate-except
            self.fail_aws(e, f"Could not describe target group {arn}")

    def health(self):
        arn = self.params["target_group_arn"]
        try:
            found = self.elbv2.describe_target_health(TargetGroupArn=arn, aws_retry=True)
        except (BotoCoreError, ClientError) as e:
            self.fail_aws(e, f"Could not describe the health of target group {arn}")
        health = TargetHealth.from_api(arn, found.get("TargetHealthDescriptions", []))
        self.result["target_health"] = health.summary()
        return health

    def alarms(self):
        names = self.params["alarm_names"]
        try:
            return self.cloudwatch.describe_alarms(
                AlarmNames=names, AlarmTypes=["MetricAlarm", "CompositeAlarm"], aws_retry=True
            )
        except (BotoCoreError, ClientError) as e:
            self.fail_aws(e, f"Could not describe CloudWatch alarms {names}")

    def firing(self):
        if not self.params["alarm_names"]:
            return []
        firing = firing_alarms(self.alarms())
        self.result["firing_alarms"] = firing
        return firing

    def modify(self, actions):
        self.elbv2.modify_listener(ListenerArn=self.result["listener_arn"], DefaultActions=actions, aws_retry=True)

    # -- the task -------------------------------------------------------------------------------
    def run(self):
        p = self.params
        errors = validate_steps(p["steps"])
        for key in ("min_healthy_targets", "wait_timeout", "bake_time"):
            if p[key] < 0:
                errors.append(f"{key}: expected a number >= 0, got {p[key]}")
        if p["poll_interval"] < 1:
            errors.append(f"poll_interval: expected at least 1 second, got {p['poll_interval']}")
        if errors:
            self.fail("Invalid options: " + "; ".join(errors))

        listener = self.listener()
        self.result["listener_arn"] = listener["ListenerArn"]
        self.result["load_balancer_arn"] = listener["LoadBalancerArn"]
        self.check_target_group()
        if p["alarm_names"]:
            missing = missing_alarms(p["alarm_names"], self.alarms())
            if missing:
                self.fail(f"CloudWatch alarms {missing} do not exist; alarm_names must name existing alarms.")

        target = p["target_group_arn"]
        before = [writable(a) for a in sorted_actions(listener["DefaultActions"])]
        self.result["actions"] = {"before": before, "after": before}
        try:
            previous, plan = plan_shift(before, target, p["steps"])
        except ValueError as e:
            self.fail(str(e))
        self.result["previous_target_group_arns"] = previous
        if p["steps"] and not previous and plan:
            self.module.warn("The listener forwards to no other target group: shifting in one step to 100%.")

        if not plan:
            self.result["active_target_group_arn"] = target
            self.exit(before, before)

        health = self.health()
        if not health.enough(p["min_healthy_targets"]):
            if self.module.check_mode:
                self.module.warn(
                    f"Target group {target} has {health.describe()}; a real run waits up to {p['wait_timeout']}s "
                    f"for {p['min_healthy_targets']} healthy and refuses the swap otherwise."
                )
            else:
                ok, health = poll_until(
                    self.health, lambda h: h.enough(p["min_healthy_targets"]), p["wait_timeout"], p["poll_interval"]
                )
                if not ok:
                    self.fail(
                        f"Refusing to move traffic to {target}: expected at least {p['min_healthy_targets']} healthy "
                        f"targets within {p['wait_timeout']}s, found {health.describe()}. Nothing was changed."
                        + health.hint()
                    )

        firing = self.firing()
        if firing:
            self.fail(
                f"Refusing to start the shift: alarms {firing} are in state ALARM already. Nothing was changed. "
                "Wait until they are OK, or leave out alarm_names to shift anyway."
            )

        self.result["steps_applied"] = [step[0] for step in plan]
        if self.module.check_mode:
            self.result["changed"] = True
            self.result["active_target_group_arn"] = target
            self.exit(before, plan[-1][1])

        applied = []
        self.result["steps_applied"] = applied
        for percent, actions in plan:
            try:
                self.modify(actions)
            except (BotoCoreError, ClientError) as e:
                if applied:
                    self.restore(before, f"ModifyListener failed at the {percent}% step")
                self.fail_aws(e, f"Could not point listener {self.result['listener_arn']} at {percent}% to {target}")
            self.result["changed"] = True
            self.result["actions"]["after"] = actions
            applied.append(percent)
            problem = watch(self.problem, p["bake_time"], p["poll_interval"])
            if problem:
                self.restore(before, f"{problem} at the {percent}% step")
                self.fail(
                    f"{problem} at the {percent}% step of the shift to {target}: the listener's previous default "
                    f"actions were put back (traffic to {previous or 'the previous actions'})."
                )
        self.result["active_target_group_arn"] = target
        self.exit(before, plan[-1][1])

    def problem(self):
        """What stops a shift while baking, or None."""
        firing = self.firing()
        if firing:
            return f"Alarms {firing} are in state ALARM"
        minimum = self.params["min_healthy_targets"]
        if minimum:
            health = self.health()
            if not health.enough(minimum):
                return f"Target group health dropped below {minimum} healthy ({health.describe()})"
        return None

    def restore(self, before, why):
        try:
            self.modify(before)
        except (BotoCoreError, ClientError) as e:
            self.fail_aws(
                e,
                f"{why}, and putting the previous default actions back FAILED: the listener "
                f"{self.result['listener_arn']} may still send traffic to {self.params['target_group_arn']}. "
                f"Run this module with target_group_arn set to {self.result['previous_target_group_arns']}[0] "
                "to roll back",
            )
        self.result["rolled_back"] = True
        self.result["actions"]["after"] = before

    def exit(self, before, after):
        self.result["actions"] = {"before": before, "after": after}
        self.result["elapsed"] = round(time.monotonic() - self.started, 3)
        if self.module._diff:
            self.result["diff"] = {
                "before": {"forward_weights": forward_weights(before), "default_actions": before},
                "after": {"forward_weights": forward_weights(after), "default_actions": after},
            }
        self.module.exit_json(**self.result)


def main():
    argument_spec = dict(
        listener_arn=dict(type="str"),
        load_balancer_name=dict(type="str"),
        listener_port=dict(type="int"),
        target_group_arn=dict(type="str", required=True),
        min_healthy_targets=dict(type="int", default=1),
        wait_timeout=dict(type="int", default=300),
        steps=dict(type="list", elements="int"),
        bake_time=dict(type="int", default=0),
        alarm_names=dict(type="list", elements="str", default=[]),
        poll_interval=dict(type="int", default=5),
    )
    module = AnsibleAWSModule(
        argument_spec=argument_spec,
        supports_check_mode=True,
        mutually_exclusive=[("listener_arn", "load_balancer_name"), ("listener_arn", "listener_port")],
        required_one_of=[("listener_arn", "load_balancer_name")],
        required_together=[("load_balancer_name", "listener_port")],
    )
    Swap(module).run()


if __name__ == "__main__":
    main()
