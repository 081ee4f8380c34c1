"""Decisions of listener_fixed_response: which rule is ours, when it changes, what is refused."""

from __future__ import annotations

import pytest
from ansible_collections.webstack.deploy.plugins.module_utils.fixed_response import (
    api_form,
    check_input,
    decide,
    normal_form,
    wanted,
)

TARGET = wanted(["/*"], 503, "text/html", "<h1>Back soon</h1>")


def described(rule: dict, priority: str = "1", arn: str = "arn:rule/1") -> dict:
    """A rule as DescribeRules returns it (PathPatternConfig and the legacy Values both filled)."""
    conditions, actions = api_form(rule)
    for condition in conditions:
        condition["Values"] = condition["PathPatternConfig"]["Values"]
    return {"RuleArn": arn, "Priority": priority, "Conditions": conditions, "Actions": actions, "IsDefault": False}


FORWARD = {
    "RuleArn": "arn:rule/colour",
    "Priority": "1",
    "Conditions": [{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Colour", "Values": ["blue"]}}],
    "Actions": [{"Type": "forward", "TargetGroupArn": "arn:tg/blue"}],
}


def test_round_trip_through_the_api_form_is_stable():
    assert normal_form(described(TARGET)) == TARGET


def test_pattern_order_is_not_a_change():
    rule = described(wanted(["/b", "/a"], 503, "text/html", "x"))
    assert normal_form(rule) == wanted(["/a", "/b"], 503, "text/html", "x")


@pytest.mark.parametrize(
    ("present", "existing", "expected"),
    [
        (True, None, "create"),
        (False, None, "none"),
        (True, described(TARGET), "none"),
        (True, described(wanted(["/*"], 503, "text/html", "old page")), "modify"),
        (True, described(wanted(["/*"], 502, "text/html", TARGET["message_body"])), "modify"),
        (False, described(TARGET), "delete"),
        (False, described(wanted(["/api/*"], 418, "text/plain", "")), "delete"),
        (True, FORWARD, "fail"),
        (False, FORWARD, "none"),
    ],
)
def test_decide(present: bool, existing: dict | None, expected: str):
    action, reason = decide(present, existing, 1, TARGET)
    assert action == expected, reason


def test_someone_elses_rule_is_named_in_the_refusal():
    action, reason = decide(True, FORWARD, 1, TARGET)
    assert action == "fail"
    assert "priority 1" in reason and "forward" in reason and "arn:rule/colour" in reason


def test_a_fixed_response_with_other_conditions_is_not_ours():
    rule = described(TARGET)
    rule["Conditions"].append({"Field": "host-header", "Values": ["example.org"]})
    assert normal_form(rule) is None


@pytest.mark.parametrize(
    ("patterns", "status", "body", "named"),
    [
        ([], 503, "", "path_patterns"),
        (["/a", "/b", "/c", "/d", "/e", "/f"], 503, "", "path_patterns"),
        (["/*"], 99, "", "status_code"),
        (["/*"], 503, "é" * 513, "message_body"),
    ],
)
def test_check_input_names_the_option(patterns: list[str], status: int, body: str, named: str):
    problems = check_input(patterns, status, body)
    assert len(problems) == 1 and problems[0].startswith(named), problems


def test_check_input_accepts_the_defaults():
    assert check_input(["/*"], 503, "x" * 1024) == []
