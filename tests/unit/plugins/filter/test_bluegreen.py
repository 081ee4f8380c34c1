"""The bluegreen filters: the app list with defaults, and errors that name the app and the field."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.webstack.deploy.plugins.filter.bluegreen import bluegreen_apps, release_record, upstream_name

DEFAULTS = {"container_port": 5000, "health_path": "/health", "verify_host": "site.test"}
APP = {
    "name": "sample-api",
    "image": "webstack/sample-api",
    "version": "v1",
    "colour_ports": {"blue": 5001, "green": "5002"},
}


def test_defaults_are_filled_in():
    (app,) = bluegreen_apps([APP], DEFAULTS)
    assert app["colour_ports"] == {"blue": 5001, "green": 5002}
    assert (app["port"], app["health_path"], app["verify_path"], app["verify_host"]) == (
        5000,
        "/health",
        "/health",
        "site.test",
    )
    assert (app["env"], app["networks"], app["smoke_tests"], app["upstream"]) == ({}, [], [], "webstack_sample_api")
    assert len(app["digest"]) == 16


def test_an_app_setting_wins_over_the_default_and_changes_the_digest():
    (plain,) = bluegreen_apps([APP], DEFAULTS)
    (own,) = bluegreen_apps([{**APP, "port": 3000, "health_path": "/healthz", "env": {"A": 1}}], DEFAULTS)
    assert (own["port"], own["verify_path"], own["env"]) == (3000, "/healthz", {"A": 1})
    assert own["digest"] != plain["digest"]


def test_a_numeric_version_is_text():
    assert bluegreen_apps([{**APP, "version": 2}], DEFAULTS)[0]["version"] == "2"


@pytest.mark.parametrize(
    ("apps", "message"),
    [
        ([{**APP, "name": "Sample"}], r"app 0 \(Sample\): name must match"),
        ([APP, APP], "name sample-api is used twice"),
        ([{**APP, "version": "v 1"}], "version must be an image tag"),
        ([{**APP, "colour_ports": {"blue": 1}}], r"colour_ports must be \{blue: <port>, green: <port>\}"),
        ([{**APP, "colour_ports": {"blue": 1, "green": 1}}], "two different ports"),
        ([APP, {**APP, "name": "orders"}], "every app needs ports of its own"),
        ([{**APP, "health_path": "health"}], "health_path must start with /"),
        (["sample-api"], "expected a mapping"),
    ],
)
def test_bad_apps_are_refused_naming_app_and_field(apps, message):
    with pytest.raises(AnsibleFilterError, match=message):
        bluegreen_apps(apps, DEFAULTS)


def test_upstream_name_filter_and_its_error():
    assert upstream_name("orders", "blue") == "webstack_orders_blue"
    with pytest.raises(AnsibleFilterError):
        upstream_name("Orders")


def test_release_record_filter():
    current = {"colour": "blue", "version": "v1", "image": "i:v1", "port": 5001}
    record = release_record(None, "release", "a", current, None, "t1")
    assert (record["event"], record["colour"], record["previous"]) == ("release", "blue", None)
