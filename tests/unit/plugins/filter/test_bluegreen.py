"""The bluegreen filters: the app list with defaults, and errors that name the app and the field."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.webstack.deploy.plugins.filter.bluegreen import (
    bluegreen_apps,
    bluegreen_env,
    bluegreen_env_file,
    bluegreen_redact,
    bluegreen_rollback_apps,
    release_record,
    upstream_name,
)

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
    assert (app["env_names"], app["networks"], app["smoke_tests"], app["upstream"]) == (
        [],
        [],
        [],
        "webstack_sample_api",
    )
    assert len(app["digest"]) == 16


def test_an_app_setting_wins_over_the_default_and_changes_the_digest():
    (plain,) = bluegreen_apps([APP], DEFAULTS)
    (own,) = bluegreen_apps([{**APP, "port": 3000, "health_path": "/healthz", "env": {"A": 1}}], DEFAULTS)
    assert (own["port"], own["verify_path"], own["env_names"]) == (3000, "/healthz", ["A"])
    assert own["digest"] != plain["digest"]


SECRET = "redis://:fake-secret-password@10.0.0.5:6379/0"


def test_the_app_list_carries_the_env_names_but_never_its_values():
    """The list is kept in facts, which -v prints: only the digest depends on the values."""
    (app,) = bluegreen_apps([{**APP, "env": {"REDIS_URL": SECRET, "LOG_DIR": "/var/log/app"}}], DEFAULTS)
    assert "env" not in app
    assert app["env_names"] == ["LOG_DIR", "REDIS_URL"]
    assert SECRET not in repr(app) and "fake-secret-password" not in repr(app)
    (other,) = bluegreen_apps([{**APP, "env": {"REDIS_URL": SECRET + "1", "LOG_DIR": "/var/log/app"}}], DEFAULTS)
    assert other["digest"] != app["digest"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"A B": "x"}, "env name 'A B' must have no '='"),
        ({"A": "two\nlines"}, "env A: its value holds a line break"),
        ({"A": " padded"}, "env A: its value starts or ends with a space"),
    ],
)
def test_an_env_no_env_file_can_carry_is_refused_naming_the_variable_not_the_value(env, message):
    with pytest.raises(AnsibleFilterError, match=message) as err:
        bluegreen_apps([{**APP, "env": env}], DEFAULTS)
    assert r"app 0 (sample-api)" in str(err.value)
    assert "two" not in str(err.value) and "padded" not in str(err.value)


def test_the_env_of_a_colour_adds_colour_and_port_as_text():
    apps = [{**APP, "env": {"REDIS_URL": SECRET, "N": 3, "COLOR": "app's own"}}]
    env = bluegreen_env(apps, "sample-api", {"COLOR": "green", "PORT": 5000, "": "no name: left out"})
    assert env == {"REDIS_URL": SECRET, "N": "3", "COLOR": "green", "PORT": "5000"}
    assert bluegreen_env_file(env).splitlines()[1:] == ["COLOR=green", "N=3", "PORT=5000", f"REDIS_URL={SECRET}"]
    with pytest.raises(AnsibleFilterError, match="no app named 'orders'"):
        bluegreen_env(apps, "orders")


def test_the_env_file_is_what_docker_reads_back():
    from ansible_collections.community.docker.plugins.module_utils._api.utils.utils import parse_env_file

    env = {"REDIS_URL": SECRET, "EQUALS": "a=b=c", "HASH": "#not a comment", "EMPTY": ""}
    path = Path(tempfile.mkdtemp()) / "app.env"
    path.write_text(bluegreen_env_file(env))
    assert parse_env_file(str(path)) == env


def test_error_text_loses_the_env_values():
    env = {"REDIS_URL": SECRET, "PORT": "500"}
    text = f"Invalid line in environment file /x:\nREDIS_URL={SECRET} on port 500"
    assert bluegreen_redact(text, env) == "Invalid line in environment file /x:\nREDIS_URL=******** on port 500"


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


class Untouchable(dict):
    """An app entry whose env must not be read (Ansible would template it, lookups and all)."""

    def __getitem__(self, key):
        if key == "env":
            raise AssertionError("env was read")
        return super().__getitem__(key)

    def get(self, key, default=None):
        if key == "env":
            raise AssertionError("env was read")
        return super().get(key, default)

    def items(self):
        raise AssertionError("every field was read")

    def values(self):
        raise AssertionError("every field was read")


def test_the_rollback_apps_are_what_the_switch_needs_and_env_is_never_read():
    other = {**APP, "name": "orders", "colour_ports": {"blue": 5011, "green": 5012}, "health_path": "/ready"}
    apps = [Untouchable({**APP, "env": {}}), Untouchable({**other, "env": {}})]
    assert bluegreen_rollback_apps(apps, "orders", DEFAULTS) == [
        {"name": "orders", "colour_ports": {"blue": 5011, "green": 5012}, "health_path": "/ready"}
    ]
    assert [a["name"] for a in bluegreen_rollback_apps(apps, "all", DEFAULTS)] == ["sample-api", "orders"]
    assert bluegreen_rollback_apps(apps[:1], "", DEFAULTS) == [
        {"name": "sample-api", "colour_ports": {"blue": 5001, "green": 5002}, "health_path": "/health"}
    ]


@pytest.mark.parametrize(
    ("name", "message"),
    [("nope", "found 'nope'."), ("", "found '' (several apps: name one).")],
)
def test_the_rollback_apps_refuse_an_unknown_or_missing_name(name, message):
    apps = [APP, {**APP, "name": "orders"}]
    with pytest.raises(AnsibleFilterError, match="expected bluegreen_rollback_app") as err:
        bluegreen_rollback_apps(apps, name, DEFAULTS)
    assert message in str(err.value)
