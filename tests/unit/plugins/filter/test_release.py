"""Filters of the release and rollback summaries (plugins/filter/release.py)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.webstack.deploy.plugins.filter.release import release_step_lines, rollback_outcome


def test_step_lines_name_the_step_host_result_time_and_what():
    steps = [
        {"step": "backup", "host": "data1", "result": "ok", "seconds": 5.04, "what": "cache labelled x"},
        {"step": "release", "host": "web1", "result": "ok", "seconds": "12", "what": "v2 live"},
    ]
    assert release_step_lines(steps) == [
        "backup on data1: ok in 5.0 s - cache labelled x",
        "release on web1: ok in 12.0 s - v2 live",
    ]
    assert release_step_lines([]) == []


def test_step_lines_refuse_a_step_without_its_fields():
    with pytest.raises(AnsibleFilterError, match="step 0 must have step, host, result, seconds, what"):
        release_step_lines([{"step": "backup"}])


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (
            {"result": "rolled_back", "version": "v1", "colour": "blue", "from_version": "v2", "switched_after": 0.4},
            "traffic back to v1 on blue (from v2), switched 0.4 s after the switch task started",
        ),
        (
            {"result": "needs_start", "version": "v1", "colour": "blue", "image": "web/app:v1"},
            "the previous colour blue was cold: web/app:v1 started again, health-gated, traffic back to v1",
        ),
        (
            {"result": "already", "version": "v1", "colour": "blue", "at": "2026-11-28T12:00:00Z"},
            "rolled back to v1 on blue at 2026-11-28T12:00:00Z already: nothing done",
        ),
        ({"result": "no_previous"}, "no previous release recorded: nothing done"),
    ],
)
def test_rollback_outcome_in_words(result, expected):
    assert rollback_outcome(result) == expected


def test_rollback_outcome_refuses_what_it_does_not_know():
    with pytest.raises(AnsibleFilterError, match="unknown result 'sideways'"):
        rollback_outcome({"result": "sideways"})
    with pytest.raises(AnsibleFilterError, match="expected a result of bluegreen_rollback"):
        rollback_outcome("rolled_back")
