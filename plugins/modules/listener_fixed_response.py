#!/usr/bin/python
# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: listener_fixed_response
short_description: Put a fixed-response rule (such as a 503 maintenance page) in front of an ALB listener
version_added: 0.1.0
description:
  - Ensures that the rule at O(priority) of an Application Load Balancer listener answers every request
    matching O(path_patterns) with a fixed response (O(status_code), O(content_type), O(message_body)), or,
    with O(state=absent), that no fixed-response rule holds that priority.
  - The listener's default action and its other rules are left alone, so blue/green switches
    (M(webstack.deploy.target_group_swap)) and the colour rules keep working underneath; with priority V(1)
    the rule wins over every other rule.
  - Target group health checks go from the load balancer to the targets directly and never pass through
    listener rules, so targets stay healthy while the rule answers clients.
  - A rule at O(priority) that is not a fixed-response rule on path patterns belongs to something else. The
    module fails rather than replace it (O(state=present)) and leaves it alone (O(state=absent)).
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  listener_arn:
    description: ARN of the listener.
    type: str
    required: true
  priority:
    description: Priority of the rule (1-50000; lower wins).
    type: int
    default: 1
  state:
    description: V(present) puts the rule in place, V(absent) removes it.
    type: str
    choices: [present, absent]
    default: present
  path_patterns:
    description: Path patterns the rule matches (1 to 5); the default matches every request.
    type: list
    elements: str
    default: ["/*"]
  status_code:
    description: HTTP status of the response.
    type: int
    default: 503
  content_type:
    description: Content-Type of the response.
    type: str
    choices: [text/plain, text/css, text/html, application/javascript, application/json]
    default: text/html
  message_body:
    description: Body of the response, at most 1024 bytes (an ELB limit).
    type: str
    default: ""
author:
  - webstack.deploy maintainers (@webstack)
seealso:
  - module: amazon.aws.elb_application_lb
    description: Manages the load balancer, its listeners and rules as a whole.
  - module: webstack.deploy.target_group_swap
extends_documentation_fragment:
  - webstack.deploy.attributes
  - webstack.deploy.attributes.aws
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

EXAMPLES = r"""
- name: Maintenance - every request gets a 503 page
  webstack.deploy.listener_fixed_response:
    listener_arn: "{{ https_listener_arn }}"
    priority: 1
    message_body: "<!DOCTYPE html><title>Maintenance</title><h1>Back soon</h1>"

- name: End of maintenance
  webstack.deploy.listener_fixed_response:
    listener_arn: "{{ https_listener_arn }}"
    priority: 1
    state: absent
"""

RETURN = r"""
rule_arn:
  description: ARN of the rule (empty when there is none, or in check mode before it was created).
  returned: always
  type: str
action:
  description: What was (or in check mode would be) done, one of V(create), V(modify), V(delete), V(none).
  returned: always
  type: str
  sample: create
rule:
  description: The rule at O(priority) after the task, in the module's normal form (null when there is none).
  returned: always
  type: dict
  sample:
    path_patterns: ["/*"]
    status_code: "503"
    content_type: text/html
    message_body: "<h1>Back soon</h1>"
"""

try:
    from botocore.exceptions import BotoCoreError, ClientError
except ImportError:  # AnsibleAWSModule reports the missing botocore
    BotoCoreError = ClientError = Exception

from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule
from ansible_collections.amazon.aws.plugins.module_utils.retries import AWSRetry
from ansible_collections.webstack.deploy.plugins.module_utils.fixed_response import (
    CONTENT_TYPES,
    api_form,
    check_input,
    decide,
    normal_form,
    wanted,
)


def rule_at(client, listener_arn: str, priority: int) -> dict | None:
    """The listener's rule holding ``priority``, as DescribeRules returns it (None if the priority is free)."""
    pages = client.get_paginator("describe_rules").paginate(ListenerArn=listener_arn)
    rules = pages.build_full_result().get("Rules", [])
    return next((rule for rule in rules if rule.get("Priority") == str(priority)), None)


def main():
    module = AnsibleAWSModule(
        argument_spec=dict(
            listener_arn=dict(type="str", required=True),
            priority=dict(type="int", default=1),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            path_patterns=dict(type="list", elements="str", default=["/*"]),
            status_code=dict(type="int", default=503),
            content_type=dict(type="str", choices=list(CONTENT_TYPES), default="text/html"),
            message_body=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    p = module.params
    problems = check_input(p["path_patterns"], p["status_code"], p["message_body"])
    if not 1 <= p["priority"] <= 50000:
        problems.append(f"priority: must be 1-50000 (got {p['priority']})")
    if problems:
        module.fail_json(msg="; ".join(problems))

    client = module.client("elbv2", retry_decorator=AWSRetry.jittered_backoff())
    present = p["state"] == "present"
    target = wanted(p["path_patterns"], p["status_code"], p["content_type"], p["message_body"])
    try:
        existing = rule_at(client, p["listener_arn"], p["priority"])
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg=f"Could not describe the rules of listener {p['listener_arn']}")
    action, reason = decide(present, existing, p["priority"], target)
    if action == "fail":
        module.fail_json(msg=reason)
    before = normal_form(existing) if existing else None
    after = target if present else (before if action == "none" else None)
    result = {
        "changed": action in ("create", "modify", "delete"),
        "action": action,
        "rule_arn": (existing or {}).get("RuleArn", "") if action != "delete" else "",
        "rule": after,
        "diff": {"before": {"rule": before}, "after": {"rule": after}},
    }
    if action == "none" and existing is not None and before is None:
        module.warn(reason)
    if module.check_mode or not result["changed"]:
        module.exit_json(**result)

    conditions, actions = api_form(target)
    try:
        if action == "create":
            created = client.create_rule(
                ListenerArn=p["listener_arn"], Priority=p["priority"], Conditions=conditions, Actions=actions
            )
            result["rule_arn"] = created["Rules"][0]["RuleArn"]
        elif action == "modify":
            client.modify_rule(RuleArn=existing["RuleArn"], Conditions=conditions, Actions=actions)
        else:
            client.delete_rule(RuleArn=existing["RuleArn"])
    except (BotoCoreError, ClientError) as e:
        module.fail_json_aws(e, msg=f"Could not {action} the rule at priority {p['priority']} ({reason})")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
