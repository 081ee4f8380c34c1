# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters reading an ALB listener's default actions with the decisions of module_utils/listener_swap,
so a role and webstack.deploy.target_group_swap agree on which target group a listener serves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.webstack.deploy.plugins.module_utils import listener_swap as ls

# amazon.aws' info modules return the API's keys in snake_case; listener_swap reads the API's own.
_CAMEL = {
    "type": "Type",
    "order": "Order",
    "target_group_arn": "TargetGroupArn",
    "forward_config": "ForwardConfig",
    "target_groups": "TargetGroups",
    "weight": "Weight",
}


def _api_keys(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {_CAMEL.get(k, k): _api_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_api_keys(v) for v in value]
    return value


def _actions(default_actions: Any) -> list[dict[str, Any]]:
    if default_actions is None:
        return []
    if not isinstance(default_actions, Sequence) or isinstance(default_actions, (str, bytes)):
        raise AnsibleFilterError(
            f"expected a listener's default actions (a list), found {type(default_actions).__name__}"
        )
    actions = [dict(a, Order=int(a.get("Order") or 0)) for a in _api_keys(list(default_actions))]
    return ls.sorted_actions(actions)


def listener_forward_weights(default_actions: Any) -> dict[str, int]:
    """Target group ARN -> weight of the forward action; {} when the listener does not forward."""
    return ls.forward_weights(_actions(default_actions))


def listener_active_target_group(default_actions: Any) -> str:
    """The target group that takes the most traffic (mid-shift: the heaviest; on a tie the first by ARN),
    '' when the listener forwards nowhere."""
    weights = {arn: w for arn, w in listener_forward_weights(default_actions).items() if w > 0}
    if not weights:
        return ""
    return sorted(weights, key=lambda arn: (-weights[arn], arn))[0]


class FilterModule:
    def filters(self):
        return {
            "listener_forward_weights": listener_forward_weights,
            "listener_active_target_group": listener_active_target_group,
        }
