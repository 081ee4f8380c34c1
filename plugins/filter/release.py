# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of playbooks/deploy.yml and playbooks/rollback.yml: the lines of a release or rollback summary."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

STEP_KEYS = ("step", "host", "result", "seconds", "what")


def release_step_lines(steps: Sequence[Mapping[str, Any]]) -> list[str]:
    """One line per step: '<step> on <host>: <result> in <seconds> s - <what>'."""
    lines = []
    for index, step in enumerate(steps or []):
        if not isinstance(step, Mapping) or any(k not in step for k in STEP_KEYS):
            raise AnsibleFilterError(
                f"release_step_lines: step {index} must have {', '.join(STEP_KEYS)}; found {step!r}"
            )
        try:
            seconds = f"{float(step['seconds']):.1f}"
        except (TypeError, ValueError):
            seconds = str(step["seconds"])
        lines.append(f"{step['step']} on {step['host']}: {step['result']} in {seconds} s - {step['what']}")
    return lines


def rollback_outcome(result: Mapping[str, Any]) -> str:
    """What webstack.deploy.bluegreen_rollback (and the cold start after it) did for one app, in words."""
    if not isinstance(result, Mapping) or "result" not in result:
        raise AnsibleFilterError(f"rollback_outcome: expected a result of bluegreen_rollback; found {result!r}")
    r = {k: "?" if v is None else v for k, v in result.items()}
    outcome = r["result"]
    if outcome == "rolled_back":
        return (
            f"traffic back to {r.get('version', '?')} on {r.get('colour', '?')} (from {r.get('from_version', '?')}),"
            f" switched {r.get('switched_after', '?')} s after the switch task started"
        )
    if outcome == "needs_start":
        return (
            f"the previous colour {r.get('colour', '?')} was cold: {r.get('image', r.get('version', '?'))}"
            f" started again, health-gated, traffic back to {r.get('version', '?')}"
        )
    if outcome == "already":
        where = f"{r.get('version', '?')} on {r.get('colour', '?')}"
        return f"rolled back to {where} at {r.get('at', '?')} already: nothing done"
    if outcome == "no_previous":
        return "no previous release recorded: nothing done"
    raise AnsibleFilterError(f"rollback_outcome: unknown result {outcome!r}")


class FilterModule:
    """Release and rollback summary filters."""

    def filters(self) -> dict[str, Any]:
        return {"release_step_lines": release_step_lines, "rollback_outcome": rollback_outcome}
