"""Which target group an ALB listener serves, from its default actions as amazon.aws or the API returns them."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.webstack.deploy.plugins.filter.listener import (
    listener_active_target_group,
    listener_forward_weights,
)

BLUE = "arn:aws:elasticloadbalancing:eu-west-1:210987654321:targetgroup/webstack-prod-blue/1"
GREEN = "arn:aws:elasticloadbalancing:eu-west-1:210987654321:targetgroup/webstack-prod-green/2"


def weighted(blue: int, green: int) -> list[dict]:
    """A mid-shift HTTPS listener as elb_application_lb_info reports it (snake_case)."""
    return [
        {
            "type": "forward",
            "order": 1,
            "forward_config": {
                "target_groups": [
                    {"target_group_arn": BLUE, "weight": blue},
                    {"target_group_arn": GREEN, "weight": green},
                ],
                "target_group_stickiness_config": {"enabled": False},
            },
        }
    ]


def test_a_plain_forward_is_one_group_of_weight_one():
    actions = [{"type": "forward", "target_group_arn": BLUE, "order": 1}]
    assert listener_forward_weights(actions) == {BLUE: 1}
    assert listener_active_target_group(actions) == BLUE


@pytest.mark.parametrize(("blue", "green", "active"), [(90, 10, BLUE), (10, 90, GREEN), (0, 1, GREEN), (1, 0, BLUE)])
def test_mid_shift_the_heaviest_group_is_active(blue: int, green: int, active: str):
    assert listener_forward_weights(weighted(blue, green)) == {BLUE: blue, GREEN: green}
    assert listener_active_target_group(weighted(blue, green)) == active


def test_a_tie_is_decided_by_arn_not_by_order_of_listing():
    assert listener_active_target_group(weighted(50, 50)) == BLUE
    reversed_listing = weighted(50, 50)
    reversed_listing[0]["forward_config"]["target_groups"].reverse()
    assert listener_active_target_group(reversed_listing) == BLUE


def test_api_keys_read_the_same():
    actions = [
        {
            "Type": "forward",
            "Order": 1,
            "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": GREEN, "Weight": 3}]},
        }
    ]
    assert listener_forward_weights(actions) == {GREEN: 3}


def test_the_forward_action_is_found_after_an_authentication_action():
    actions = [
        {"type": "forward", "target_group_arn": GREEN, "order": 2},
        {"type": "authenticate-oidc", "order": 1, "authenticate_oidc_config": {"issuer": "https://id.webstack.io"}},
    ]
    assert listener_active_target_group(actions) == GREEN


@pytest.mark.parametrize(
    "actions",
    [None, [], [{"type": "redirect", "redirect_config": {"protocol": "HTTPS"}}], [{"type": "forward", "order": None}]],
)
def test_a_listener_that_forwards_nowhere_has_no_active_group(actions):
    assert listener_active_target_group(actions) == ""


def test_anything_but_a_list_is_refused_with_what_was_found():
    with pytest.raises(AnsibleFilterError, match="found str"):
        listener_forward_weights("forward")
