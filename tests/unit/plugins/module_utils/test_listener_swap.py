"""Decisions of target_group_swap: weights, steps, actions to write, health and alarms."""

from __future__ import annotations

import pytest
from ansible_collections.webstack.deploy.plugins.module_utils.listener_swap import (
    TargetHealth,
    actions_for,
    firing_alarms,
    forward_weights,
    is_active,
    missing_alarms,
    percent_of,
    plan_shift,
    previous_groups,
    remaining_steps,
    validate_steps,
    weights_at,
    writable,
)

BLUE, GREEN, OLD = "arn:tg/blue", "arn:tg/green", "arn:tg/old"


def simple(arn: str, order: int = 1) -> dict:
    """A single-group forward action as ELB describes it."""
    return {
        "Type": "forward",
        "Order": order,
        "TargetGroupArn": arn,
        "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": arn, "Weight": 1}],
            "TargetGroupStickinessConfig": {"Enabled": False},
        },
    }


def weighted(weights: dict[str, int], stickiness: dict | None = None) -> dict:
    return {
        "Type": "forward",
        "Order": 1,
        "ForwardConfig": {
            "TargetGroups": [{"TargetGroupArn": a, "Weight": w} for a, w in weights.items()],
            "TargetGroupStickinessConfig": stickiness or {"Enabled": False},
        },
    }


@pytest.mark.parametrize(
    ("steps", "error"),
    [
        (None, None),
        ([100], None),
        ([10, 50, 100], None),
        ([], "empty list"),
        ([0, 100], "between 1 and 100"),
        ([10, 101], "between 1 and 100"),
        ([50, 50, 100], "increase strictly"),
        ([50, 20, 100], "increase strictly"),
        ([10, 50], "last step must be 100"),
    ],
)
def test_validate_steps(steps, error):
    errors = validate_steps(steps)
    if error is None:
        assert errors == []
    else:
        assert len(errors) == 1 and error in errors[0]


def test_forward_weights_reads_both_shapes_elb_returns():
    assert forward_weights([{"Type": "forward", "TargetGroupArn": BLUE}]) == {BLUE: 1}
    assert forward_weights([simple(BLUE)]) == {BLUE: 1}
    assert forward_weights([weighted({BLUE: 90, GREEN: 10})]) == {BLUE: 90, GREEN: 10}
    assert forward_weights([{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503"}}]) == {}


def test_active_means_all_traffic():
    assert is_active({GREEN: 1}, GREEN)
    assert is_active({GREEN: 5, BLUE: 0}, GREEN)
    assert not is_active({GREEN: 99, BLUE: 1}, GREEN)
    assert not is_active({BLUE: 1}, GREEN)
    assert not is_active({GREEN: 0, BLUE: 0}, GREEN)


def test_previous_groups_heaviest_first_and_without_idle_ones():
    assert previous_groups({BLUE: 30, OLD: 60, GREEN: 10, "arn:tg/idle": 0}, GREEN) == [OLD, BLUE]


@pytest.mark.parametrize(
    ("steps", "current", "todo"),
    [
        (None, 0, [100]),
        ([10, 50, 100], 0, [10, 50, 100]),
        ([10, 50, 100], 10, [50, 100]),
        ([10, 50, 100], 30, [50, 100]),
        ([10, 50, 100], 50, [100]),
    ],
)
def test_remaining_steps_resume_a_stopped_shift(steps, current, todo):
    assert remaining_steps(steps, current) == todo


def test_weights_split_the_rest_in_old_proportions_and_sum_to_100():
    assert weights_at(10, GREEN, {BLUE: 1}) == {GREEN: 10, BLUE: 90}
    three = weights_at(10, GREEN, {BLUE: 1, OLD: 2})
    assert three == {GREEN: 10, BLUE: 30, OLD: 60}
    odd = weights_at(33, GREEN, {BLUE: 1, OLD: 1, "arn:tg/c": 1})
    assert sum(odd.values()) == 100 and odd[GREEN] == 33
    assert sorted(v for k, v in odd.items() if k != GREEN) == [22, 22, 23]
    assert weights_at(100, GREEN, {BLUE: 1}) == {GREEN: 1}
    assert weights_at(40, GREEN, {}) == {GREEN: 1}


def test_percent_of():
    assert percent_of({GREEN: 10, BLUE: 90}, GREEN) == 10
    assert percent_of({}, GREEN) == 0


def test_actions_for_keeps_authentication_order_and_stickiness():
    oidc = {
        "Type": "authenticate-oidc",
        "Order": 1,
        "AuthenticateOidcConfig": {"Issuer": "https://idp", "ClientId": "web"},
    }
    sticky = {"Enabled": True, "DurationSeconds": 300}
    forward = dict(weighted({BLUE: 1}, sticky), Order=2)
    out = actions_for([forward, oidc], {GREEN: 10, BLUE: 90})
    assert [a["Type"] for a in out] == ["authenticate-oidc", "forward"]
    # ELB never returns the OIDC client secret; writing the action back must keep the stored one
    assert out[0]["AuthenticateOidcConfig"]["UseExistingClientSecret"] is True
    assert out[1]["Order"] == 2
    assert out[1]["ForwardConfig"]["TargetGroupStickinessConfig"] == sticky
    assert out[1]["ForwardConfig"]["TargetGroups"] == [
        {"TargetGroupArn": GREEN, "Weight": 10},
        {"TargetGroupArn": BLUE, "Weight": 90},
    ]
    assert "TargetGroupArn" not in out[1]  # only allowed with a single group


def test_actions_for_replaces_a_terminal_non_forward_action():
    out = actions_for(
        [{"Type": "fixed-response", "Order": 1, "FixedResponseConfig": {"StatusCode": "503"}}], {GREEN: 1}
    )
    assert out == [
        {
            "Type": "forward",
            "Order": 1,
            "TargetGroupArn": GREEN,
            "ForwardConfig": {
                "TargetGroups": [{"TargetGroupArn": GREEN, "Weight": 1}],
                "TargetGroupStickinessConfig": {"Enabled": False},
            },
        }
    ]


def test_writable_does_not_touch_the_input_and_keeps_a_given_secret():
    oidc = {"Type": "authenticate-oidc", "AuthenticateOidcConfig": {"ClientSecret": "s"}}
    out = writable(oidc)
    assert "UseExistingClientSecret" not in out["AuthenticateOidcConfig"]
    out["AuthenticateOidcConfig"]["ClientSecret"] = "changed"
    assert oidc["AuthenticateOidcConfig"]["ClientSecret"] == "s"


def test_plan_shift_already_active_is_no_change():
    assert plan_shift([simple(GREEN)], GREEN, [10, 50, 100]) == ([], [])


def test_plan_shift_steps_and_previous_groups():
    previous, plan = plan_shift([simple(BLUE)], GREEN, [10, 50, 100])
    assert previous == [BLUE]
    assert [step[0] for step in plan] == [10, 50, 100]
    assert [forward_weights(step[1]) for step in plan] == [
        {GREEN: 10, BLUE: 90},
        {GREEN: 50, BLUE: 50},
        {GREEN: 1},
    ]


def test_plan_shift_resumes_from_the_current_share():
    previous, plan = plan_shift([weighted({BLUE: 50, GREEN: 50})], GREEN, [10, 50, 100])
    assert previous == [BLUE]
    assert [step[0] for step in plan] == [100]


def test_plan_shift_from_a_listener_that_does_not_forward_is_one_step():
    previous, plan = plan_shift([{"Type": "redirect", "Order": 1, "RedirectConfig": {}}], GREEN, [10, 100])
    assert previous == []
    assert [step[0] for step in plan] == [100]


def test_plan_shift_refuses_a_sixth_group():
    full = weighted({f"arn:tg/{i}": 1 for i in range(5)})
    with pytest.raises(ValueError, match="at most 5"):
        plan_shift([full], GREEN, [10, 100])


def describe(*states):
    return [
        {
            "Target": {"Id": f"i-{n}", "Port": 8080},
            "TargetHealth": {"State": state, **({"Reason": reason} if reason else {})},
        }
        for n, (state, reason) in enumerate(states)
    ]


def test_health_counts_only_healthy_targets():
    health = TargetHealth.from_api(
        GREEN,
        describe(
            ("healthy", None), ("unhealthy", "Target.ResponseCodeMismatch"), ("initial", "Elb.RegistrationInProgress")
        ),
    )
    assert health.healthy == 1
    assert health.enough(1) and not health.enough(2)
    assert health.describe() == (
        "1 of 3 targets healthy: i-0:8080 healthy, i-1:8080 unhealthy (Target.ResponseCodeMismatch), "
        "i-2:8080 initial (Elb.RegistrationInProgress)"
    )
    assert health.summary()["total"] == 3


def test_health_hints_name_the_likely_cause():
    unused = TargetHealth.from_api(GREEN, describe(("unused", "Target.NotInUse")))
    assert "not health-check them" in unused.hint()
    empty = TargetHealth.from_api(GREEN, [])
    assert empty.describe() == "no registered targets"
    assert empty.enough(0) and not empty.enough(1)
    assert "Register" in empty.hint()


def test_alarms():
    response = {
        "MetricAlarms": [{"AlarmName": "5xx", "StateValue": "ALARM"}, {"AlarmName": "latency", "StateValue": "OK"}],
        "CompositeAlarms": [{"AlarmName": "service", "StateValue": "INSUFFICIENT_DATA"}],
    }
    assert firing_alarms(response) == ["5xx"]
    assert missing_alarms(["5xx", "service", "typo"], response) == ["typo"]
