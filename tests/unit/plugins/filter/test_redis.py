"""The redis role's input checks: they name the variable and never echo a password."""

from __future__ import annotations

import pytest
from ansible_collections.webstack.deploy.plugins.filter.redis import (
    redis_acl_errors,
    redis_memory_errors,
    redis_password_errors,
)

SECRET = "a-secret-of-enough-length"


def test_good_password_passes():
    assert redis_password_errors(SECRET, "redis_password") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "found none"), ("", "found none"), ("short-pw", "at least 16 characters, found 8"), (12345, "found none")],
)
def test_bad_passwords_are_named_not_echoed(value, expected):
    (message,) = redis_password_errors(value, "redis_password")
    assert message.startswith("redis_password:") and expected in message
    if isinstance(value, str) and value:
        assert value not in message


def test_password_with_white_space_is_refused():
    assert "white space" in redis_password_errors("sixteen chars and more", "redis_password")[0]


def test_good_acl_users_pass():
    users = [
        {"name": "monitor", "password": SECRET, "rules": "-@all +info"},
        {"name": "backup", "password": SECRET + "2", "rules": "+bgsave", "enabled": False},
    ]
    assert redis_acl_errors(users) == []


def test_acl_user_errors_name_the_user_and_the_key():
    users = [
        {"name": "default", "password": SECRET, "rules": "+@all"},
        {"name": "bad name", "password": "tiny-secret", "rules": ""},
        {"name": "x", "password": SECRET, "rules": ">inline-secret +@all", "colour": "blue"},
        {"name": "x", "password": SECRET, "rules": "+@read", "enabled": "yes"},
        "just a string",
    ]
    errors = redis_acl_errors(users)
    text = " ".join(errors)
    assert "redis_acl_users entry 'default': the default user is set by redis_password" in text
    assert "entry 'bad name': name:" in text
    assert "entry 'bad name': expected at least 16 characters, found 11" in text
    assert "entry 'bad name': rules: expected ACL rules" in text
    assert "entry 'x': unknown key(s) colour" in text
    assert "entry 'x': rules: passwords are set from 'password' only" in text
    assert "entry 'x': the name appears twice" in text
    assert "entry 'x': enabled: expected true or false" in text
    assert "redis_acl_users[4]: expected a mapping" in text
    assert "tiny-secret" not in text and "inline-secret" not in text


def test_acl_users_must_be_a_list():
    assert redis_acl_errors({"name": "x"}) == ["redis_acl_users: expected a list of users, found dict."]


@pytest.mark.parametrize("value", ["0", "256mb", "2GB", "1048576", "64k"])
def test_memory_sizes_redis_accepts(value):
    assert redis_memory_errors(value, "redis_maxmemory") == []


@pytest.mark.parametrize("value", ["256 MB", "-1", "lots", "1.5gb", ""])
def test_memory_sizes_redis_refuses(value):
    (message,) = redis_memory_errors(value, "redis_maxmemory")
    assert message.startswith("redis_maxmemory: expected a size") and f"found '{value}'" in message
