"""The apps' versions of a colour Auto Scaling group: its tags AppVersion:<app>, as amazon.aws or the API lists them."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.webstack.deploy.plugins.filter.app_versions import (
    app_rollback_refusal,
    app_version_tags,
    app_versions,
    app_versions_differ,
)

GROUP_TAGS = [  # autoscaling_group_info (snake_case), in moto's insertion order
    {"key": "Colour", "value": "green", "propagate_at_launch": True, "resource_id": "webstack-prod-green"},
    {"key": "Role", "value": "app", "propagate_at_launch": True, "resource_id": "webstack-prod-green"},
    {"key": "AppVersion:sample-api", "value": "6.0.0", "propagate_at_launch": True},
    {"key": "AppVersion:orders", "value": "7.0.0", "propagate_at_launch": True},
]


def test_versions_come_from_the_app_version_tags_only():
    assert app_versions(GROUP_TAGS) == {"orders": "7.0.0", "sample-api": "6.0.0"}
    assert list(app_versions(GROUP_TAGS)) == ["orders", "sample-api"]  # sorted by app


def test_api_and_dict_shapes_give_the_same_versions():
    api = [{"Key": t["key"], "Value": t["value"]} for t in GROUP_TAGS]
    as_dict = {t["key"]: t["value"] for t in GROUP_TAGS}
    assert app_versions(api) == app_versions(as_dict) == app_versions(GROUP_TAGS)


@pytest.mark.parametrize("tags", [None, [], {}, [{"key": "AppVersion", "value": "1.0"}], {"AppVersion:": "1.0"}])
def test_no_app_version_tag_means_no_version(tags):
    # The tag of one version for the whole group (AppVersion) and an empty app name name no app.
    assert app_versions(tags) == {}


@pytest.mark.parametrize("bad", ["AppVersion:orders=1", 42, [{"value": "1.0"}], ["AppVersion:orders"]])
def test_what_is_not_tags_is_refused(bad):
    with pytest.raises(AnsibleFilterError):
        app_versions(bad)


def test_tags_of_versions_round_trip():
    tags = app_version_tags({"sample-api": "6.0.0", "orders": 7})
    assert tags == {"AppVersion:orders": "7", "AppVersion:sample-api": "6.0.0"}
    assert app_versions(tags) == {"orders": "7", "sample-api": "6.0.0"}
    with pytest.raises(AnsibleFilterError):
        app_version_tags(["orders"])


def test_differ_names_the_apps_a_swap_would_move():
    live = {"orders": "7.0.0", "sample-api": "6.0.0"}
    assert app_versions_differ(live, {"orders": "5.0.0", "sample-api": "6.0.0"}) == ["orders"]
    assert app_versions_differ(live, live) == []
    # An app only one colour has a tag for runs at the inventory's version on the other: it differs.
    assert app_versions_differ(live, {"sample-api": "6.0.0"}) == ["orders"]
    assert app_versions_differ({}, {}) == []
    with pytest.raises(AnsibleFilterError):
        app_versions_differ(live, ["orders"])


STATE = {  # the SSM record after releases of orders then sample-api
    "app": "sample-api",
    "event": "release",
    "previous_colour": "blue",
    "versions": {"orders": "5.0.0", "sample-api": "6.0.0"},
    "previous_versions": {"orders": "5.0.0", "sample-api": "1.0.0"},
}


def test_a_rollback_of_the_app_the_last_release_moved_is_allowed():
    assert app_rollback_refusal(STATE, "sample-api", ["sample-api", "orders"]) == ""
    assert app_rollback_refusal(STATE, "", ["sample-api", "orders"]) == ""  # one-app platform: no name


def test_a_rollback_that_would_move_another_app_is_refused_naming_it():
    why = app_rollback_refusal(STATE, "orders", ["sample-api", "orders"])
    assert why.startswith("app (release_aws_app): the previous colour (blue) differs from the live one in sample-api")
    assert "not in orders alone (the last release was of sample-api)" in why


def test_an_unknown_app_is_refused_before_the_state_is_looked_at():
    why = app_rollback_refusal(None, "billing", ["sample-api", "orders"])
    assert why == "app (release_aws_app): billing is not an app of this platform (one of sample-api, orders)"
