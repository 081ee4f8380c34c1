# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions of webstack.deploy.target_group_swap, free of AWS calls so they can be unit tested.

* which target groups a listener's default action forwards to, with which weights
  (``forward_weights``), and whether the wanted group already takes all traffic;
* the weights of each step of a shift (``weights_at``) and the steps still to do
  (``remaining_steps``) when a run resumes a shift that stopped half-way;
* the default actions to write for a step (``actions_for``), keeping every other action
  (authentication) and the stickiness settings;
* whether a target group is healthy enough (``TargetHealth``) and which alarms fire.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

HEALTHY = "healthy"
MAX_WEIGHT = 999  # ELB's limit for one target group's weight
MAX_GROUPS = 5  # ELB's limit of target groups in one forward action


def validate_steps(steps: Sequence[int] | None) -> list[str]:
    """Errors in ``steps``: percents 1-100, strictly increasing, ending at 100."""
    if steps is None:
        return []
    if not steps:
        return ["steps: expected a list of percents ending with 100 (e.g. [10, 50, 100]), got an empty list"]
    errors = []
    if any(not isinstance(s, int) or isinstance(s, bool) or not 1 <= s <= 100 for s in steps):
        errors.append(f"steps: each step is a percent between 1 and 100, got {list(steps)}")
    elif any(b <= a for a, b in itertools.pairwise(steps)):
        errors.append(f"steps: percents must increase strictly, got {list(steps)}")
    elif steps[-1] != 100:
        errors.append(f"steps: the last step must be 100 so the shift completes, got {list(steps)}")
    return errors


def forward_index(actions: Sequence[Mapping[str, Any]]) -> int | None:
    """Index of the forward action among the (Order-sorted) default actions, None without one."""
    for i, action in enumerate(actions):
        if action.get("Type") == "forward":
            return i
    return None


def forward_weights(actions: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    """Target group ARN -> weight of the forward action ({} when the listener does not forward)."""
    i = forward_index(actions)
    if i is None:
        return {}
    action = actions[i]
    groups = (action.get("ForwardConfig") or {}).get("TargetGroups") or []
    if groups:
        return {g["TargetGroupArn"]: int(g.get("Weight", 1)) for g in groups}
    if action.get("TargetGroupArn"):
        return {action["TargetGroupArn"]: 1}
    return {}


def percent_of(weights: Mapping[str, int], arn: str) -> float:
    total = sum(weights.values())
    return 100.0 * weights.get(arn, 0) / total if total else 0.0


def is_active(weights: Mapping[str, int], arn: str) -> bool:
    """True when ``arn`` takes all of the traffic (other groups may be listed with weight 0)."""
    return weights.get(arn, 0) > 0 and all(w == 0 for a, w in weights.items() if a != arn)


def previous_groups(weights: Mapping[str, int], target: str) -> list[str]:
    """Groups other than ``target`` that take traffic now, heaviest first."""
    others = [(w, a) for a, w in weights.items() if a != target and w > 0]
    return [a for w, a in sorted(others, key=lambda x: (-x[0], x[1]))]


def remaining_steps(steps: Sequence[int] | None, current_percent: float) -> list[int]:
    """Steps still to take when ``target`` already gets ``current_percent`` of the traffic."""
    return [s for s in (steps or [100]) if s > current_percent] or [100]


def weights_at(percent: int, target: str, previous: Mapping[str, int]) -> dict[str, int]:
    """Weights giving ``target`` ``percent``% of the traffic and the rest to ``previous`` in their old proportions.

    Weights sum to 100 so they read as percents; shares are rounded by largest remainder so the
    sum stays exact. At 100% (or with no previous group) only ``target`` remains.
    """
    previous = {a: w for a, w in previous.items() if a != target and w > 0}
    if percent >= 100 or not previous:
        return {target: 1}
    rest = 100 - percent
    total = sum(previous.values())
    exact = {a: rest * w / total for a, w in previous.items()}
    shares = {a: int(v) for a, v in exact.items()}
    leftover = rest - sum(shares.values())
    for a in sorted(exact, key=lambda a: (-(exact[a] - shares[a]), a))[:leftover]:
        shares[a] += 1
    weights = {target: percent}
    weights.update({a: s for a, s in shares.items() if s > 0})
    return weights


def writable(action: Mapping[str, Any]) -> dict[str, Any]:
    """An action as described by ELB, made fit to be written back by ModifyListener."""
    action = copy.deepcopy(dict(action))
    if action.get("Type") == "authenticate-oidc":
        # ELB never returns the client secret; this keeps the stored one.
        config = action.setdefault("AuthenticateOidcConfig", {})
        if "ClientSecret" not in config:
            config["UseExistingClientSecret"] = True
    return action


def sorted_actions(actions: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return sorted((dict(a) for a in actions), key=lambda a: a.get("Order", 0))


def forward_action(weights: Mapping[str, int], template: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A forward action with these weights, keeping Order and stickiness of ``template``."""
    stickiness = copy.deepcopy(
        ((template or {}).get("ForwardConfig") or {}).get("TargetGroupStickinessConfig") or {"Enabled": False}
    )
    groups = [{"TargetGroupArn": a, "Weight": w} for a, w in weights.items()]
    action: dict[str, Any] = {
        "Type": "forward",
        "ForwardConfig": {"TargetGroups": groups, "TargetGroupStickinessConfig": stickiness},
    }
    if len(groups) == 1:
        action["TargetGroupArn"] = groups[0]["TargetGroupArn"]
    if template and "Order" in template:
        action["Order"] = template["Order"]
    return action


def actions_for(actions: Sequence[Mapping[str, Any]], weights: Mapping[str, int]) -> list[dict[str, Any]]:
    """The listener's default actions with the forward action replaced by one with ``weights``.

    Other actions (authenticate-oidc, authenticate-cognito) stay as they are. A listener whose
    last action does not forward (redirect, fixed-response) gets it replaced by the forward.
    """
    ordered = [writable(a) for a in sorted_actions(actions)]
    i = forward_index(ordered)
    if i is None:
        i = len(ordered) - 1 if ordered else None
    if i is None:
        return [forward_action(weights, {"Order": 1})]
    ordered[i] = forward_action(weights, ordered[i])
    return ordered


def plan_shift(
    actions: Sequence[Mapping[str, Any]], target: str, steps: Sequence[int] | None
) -> tuple[list[str], list[tuple[int, list[dict[str, Any]]]]]:
    """(groups that take traffic now besides ``target``, [(percent, default actions) for each step to take]).

    Empty list of steps when ``target`` already takes all the traffic.
    """
    weights = forward_weights(sorted_actions(actions))
    if is_active(weights, target):
        return [], []
    previous = previous_groups(weights, target)
    keep = {a: weights[a] for a in previous}
    if len(keep) >= MAX_GROUPS:
        raise ValueError(
            f"the listener forwards to {len(keep)} target groups already; a forward action holds at most "
            f"{MAX_GROUPS}, so {target} cannot be added for a weighted shift"
        )
    todo = remaining_steps(steps, percent_of(weights, target)) if previous else [100]
    return previous, [(p, actions_for(actions, weights_at(p, target, keep))) for p in todo]


@dataclass(frozen=True)
class TargetHealth:
    """Health of a target group's targets, as DescribeTargetHealth reports it."""

    target_group_arn: str
    targets: tuple[dict[str, Any], ...]

    @classmethod
    def from_api(cls, arn: str, descriptions: Iterable[Mapping[str, Any]]) -> TargetHealth:
        targets = []
        for d in descriptions:
            health = d.get("TargetHealth", {})
            target = d.get("Target", {})
            targets.append(
                {
                    "id": target.get("Id"),
                    "port": target.get("Port"),
                    "state": health.get("State"),
                    "reason": health.get("Reason"),
                    "description": health.get("Description"),
                }
            )
        return cls(arn, tuple(sorted(targets, key=lambda t: (str(t["id"]), t["port"] or 0))))

    @property
    def healthy(self) -> int:
        return sum(1 for t in self.targets if t["state"] == HEALTHY)

    def enough(self, minimum: int) -> bool:
        return self.healthy >= minimum

    def describe(self) -> str:
        if not self.targets:
            return "no registered targets"
        seen = ", ".join(
            f"{t['id']}:{t['port']} {t['state']}" + (f" ({t['reason']})" if t["reason"] else "") for t in self.targets
        )
        return f"{self.healthy} of {len(self.targets)} targets healthy: {seen}"

    def hint(self) -> str:
        reasons = {t["reason"] for t in self.targets}
        if "Target.NotInUse" in reasons:
            return (
                " Targets in state unused with reason Target.NotInUse belong to a target group the load balancer "
                "does not use yet, so ELB does not health-check them: attach the group to the load balancer first "
                "(for example through a rule of a test listener) and let the checks pass."
            )
        if not self.targets:
            return " Register the new release's targets in the group first."
        return ""

    def summary(self) -> dict[str, Any]:
        return {"healthy": self.healthy, "total": len(self.targets), "targets": list(self.targets)}


def firing_alarms(response: Mapping[str, Any]) -> list[str]:
    """Names of the alarms of a DescribeAlarms response that are in state ALARM."""
    alarms = list(response.get("MetricAlarms", [])) + list(response.get("CompositeAlarms", []))
    return sorted(a["AlarmName"] for a in alarms if a.get("StateValue") == "ALARM")


def missing_alarms(names: Iterable[str], response: Mapping[str, Any]) -> list[str]:
    alarms = list(response.get("MetricAlarms", [])) + list(response.get("CompositeAlarms", []))
    found = {a["AlarmName"] for a in alarms}
    return sorted(set(names) - found)
