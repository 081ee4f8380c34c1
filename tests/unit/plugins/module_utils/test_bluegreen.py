"""Decisions of in-host blue/green releases: upstream names, the plan of a run, the release record."""

from __future__ import annotations

import pytest
from ansible_collections.webstack.deploy.plugins.module_utils import bluegreen as bg

APP = {"name": "sample-api", "image": "webstack/sample-api", "version": "v1", "digest": "d1"}


def running(image, digest="d1"):
    return {"exists": True, "running": True, "image": image, "digest": digest}


def released(version="v2", colour="green", previous=("v1", "blue")):
    return {
        "event": "release",
        "colour": colour,
        "version": version,
        "image": f"webstack/sample-api:{version}",
        "previous": {"colour": previous[1], "version": previous[0]} if previous else None,
    }


@pytest.mark.parametrize(
    ("app", "colour", "name"),
    [
        ("api", None, "webstack_api"),
        ("live-ws", None, "webstack_live_ws"),
        ("sample-api", "green", "webstack_sample_api_green"),
        ("a_b", "blue", "webstack_a_b_blue"),
    ],
)
def test_upstream_name(app, colour, name):
    assert bg.upstream_name(app, colour) == name


@pytest.mark.parametrize(("app", "colour"), [("Api", None), ("-x", None), ("api", "red"), (None, None)])
def test_upstream_name_refuses_what_nginx_could_not_name(app, colour):
    with pytest.raises(ValueError, match="upstream_name: expected"):
        bg.upstream_name(app, colour)


def test_first_converge_releases_the_inventory_version_to_blue():
    plan = bg.plan_app(APP, {"record": None, "containers": {}, "live": "blue"})
    assert plan["needs_release"] and plan["source"] == "inventory"
    assert (plan["version"], plan["image"], plan["target_colour"]) == ("v1", "webstack/sample-api:v1", "blue")
    assert plan["reason"] == "no release recorded for sample-api"


def test_converge_after_a_release_keeps_the_released_version():
    status = {"record": released(), "containers": {"green": running("webstack/sample-api:v2")}, "live": "green"}
    plan = bg.plan_app(APP, status)
    assert not plan["needs_release"], plan["reason"]
    assert (plan["version"], plan["source"], plan["inventory_version"]) == ("v2", "record", "v1")


def test_converge_after_a_rollback_keeps_the_version_rolled_back_to():
    record = {**released("v1", "blue", ("v2", "green")), "event": "rollback"}
    status = {"record": record, "containers": {"blue": running("webstack/sample-api:v1")}, "live": "blue"}
    assert not bg.plan_app({**APP, "version": "v2"}, status)["needs_release"]


@pytest.mark.parametrize(
    ("containers", "live", "digest", "reason"),
    [
        ({"green": {"running": False}}, "green", "d1", "container sample-api-green is not running"),
        (
            {"green": running("webstack/sample-api:v9")},
            "green",
            "d1",
            "container sample-api-green runs webstack/sample-api:v9",
        ),
        ({"green": running("webstack/sample-api:v2")}, "green", "d2", "the settings of sample-api-green differ"),
        ({"green": running("webstack/sample-api:v2")}, "blue", "d1", "nginx sends sample-api to blue"),
    ],
)
def test_converge_repairs_the_live_version_on_the_idle_colour(containers, live, digest, reason):
    plan = bg.plan_app({**APP, "digest": digest}, {"record": released(), "containers": containers, "live": live})
    assert plan["needs_release"] and plan["reason"].startswith(reason)
    assert (plan["version"], plan["target_colour"]) == ("v2", "blue")


def test_nginx_is_not_asked_when_the_role_does_not_switch_it():
    status = {"record": released(), "containers": {"green": running("webstack/sample-api:v2")}, "live": ""}
    assert not bg.plan_app(APP, status, nginx=False)["needs_release"]


def test_a_release_moves_one_app_and_leaves_the_others():
    other = {**APP, "name": "orders"}
    statuses = {
        "sample-api": {
            "record": released(),
            "containers": {"green": running("webstack/sample-api:v2")},
            "live": "green",
        },
        "orders": {"record": released(), "containers": {"green": running("webstack/sample-api:v2")}, "live": "green"},
    }
    plans = {p["name"]: p for p in bg.plan([APP, other], statuses, "orders", "v3")}
    assert not plans["sample-api"]["needs_release"]
    assert plans["orders"]["needs_release"] and plans["orders"]["source"] == "release"
    assert (plans["orders"]["version"], plans["orders"]["target_colour"]) == ("v3", "blue")


@pytest.mark.parametrize(
    ("status", "converge_would"),
    [
        ({}, "no release recorded for orders"),
        (
            {"record": released(), "containers": {"green": {"running": False}}, "live": "green"},
            "container orders-green is not running",
        ),
        (
            {"record": released(), "containers": {"green": running("webstack/sample-api:v2")}, "live": "green"},
            "the settings of orders-green differ",
        ),
    ],
    ids=["never-released", "stopped", "settings-changed"],
)
def test_a_release_never_releases_another_app_that_a_converge_would(status, converge_would):
    """Only site.yml releases or repairs the other apps: a release of sample-api leaves orders as it is."""
    live = {"record": released(), "containers": {"green": running("webstack/sample-api:v2")}, "live": "green"}
    statuses = {"sample-api": live, "orders": status}
    other = {**APP, "name": "orders", "digest": "changed"}
    plans = {p["name"]: p for p in bg.plan([APP, other], statuses, "sample-api", "v3")}
    assert plans["sample-api"]["needs_release"] and plans["sample-api"]["version"] == "v3"
    assert not plans["orders"]["needs_release"] and plans["orders"]["reason"] == ""
    assert plans["orders"]["left_alone"].startswith(converge_would)
    # The converge of the same host does release or repair orders.
    converge = {p["name"]: p for p in bg.plan([APP, other], statuses)}
    assert converge["orders"]["needs_release"] and converge["orders"]["reason"].startswith(converge_would)
    assert converge["orders"]["left_alone"] == ""


def test_releasing_the_live_version_changes_nothing():
    statuses = {
        "sample-api": {
            "record": released(),
            "containers": {"green": running("webstack/sample-api:v2")},
            "live": "green",
        }
    }
    assert not bg.plan([APP], statuses, "sample-api", "v2")[0]["needs_release"]


@pytest.mark.parametrize(
    ("app", "version", "message"),
    [("nope", "v2", "app: expected one of sample-api"), ("sample-api", "v 2", "version: expected")],
)
def test_plan_refuses_an_unknown_app_or_a_bad_version(app, version, message):
    with pytest.raises(ValueError, match=message):
        bg.plan([APP], {}, app, version)


def test_next_record_keeps_a_bounded_history_newest_first():
    current = {"colour": "green", "version": "v2", "image": "i:v2", "port": "5002"}
    previous = {"colour": "blue", "version": "v1", "image": "i:v1", "port": 5001}
    first = bg.next_record(None, "release", "a", previous, None, "t1", "s1")
    assert first["previous"] is None and first["previous_stops_at"] is None
    second = bg.next_record(first, "release", "a", current, previous, "t2", "s2", by="ops", history_size=2)
    assert (second["colour"], second["port"], second["previous"]["port"], second["by"]) == ("green", 5002, 5001, "ops")
    third = bg.next_record(second, "rollback", "a", previous, current, "t3", history_size=2)
    assert [h["at"] for h in third["history"]] == ["t3", "t2"]
    assert third["event"] == "rollback"
    with pytest.raises(ValueError):
        bg.next_record(None, "promote", "a", current, None, "t")


@pytest.mark.parametrize(
    ("status", "body", "expect", "problem"),
    [
        (200, '{"version": "v2"}', {"version": "v2"}, None),
        (503, "broken", {}, "HTTP 503 (expected 200)"),
        (200, '{"version": "v1"}', {"version": "v2"}, "version is 'v1' (expected 'v2')"),
        (200, "<html>", {"version": "v2"}, "body is not JSON"),
        (None, "", {}, "ConnectionRefusedError"),
    ],
)
def test_judge_answer(status, body, expect, problem):
    assert bg.judge_answer(status, body, 200, expect, error="ConnectionRefusedError") == problem


def test_live_file_round_trip(tmp_path):
    assert bg.read_live(str(tmp_path), "api") == ""
    bg.write_live(str(tmp_path), "api", "green")
    assert (tmp_path / "api").read_text() == "green\n"
    assert bg.read_live(str(tmp_path), "api") == "green"
    (tmp_path / "api").write_text("purple\n")
    assert bg.read_live(str(tmp_path), "api") == ""
    with pytest.raises(ValueError):
        bg.write_live(str(tmp_path), "api", "purple")
    assert [p.name for p in tmp_path.iterdir()] == ["api"]  # no temporary file left


def test_config_digest_follows_the_settings_not_their_order():
    a = bg.config_digest({"image": "i", "env": {"A": 1, "B": "x"}})
    assert a == bg.config_digest({"env": {"B": "x", "A": "1"}, "image": "i"})
    assert a != bg.config_digest({"image": "i", "env": {"A": 2, "B": "x"}})
