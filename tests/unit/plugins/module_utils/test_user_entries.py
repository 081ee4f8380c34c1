"""The checks the redis and mongodb filters share for their lists of users."""

from __future__ import annotations

from ansible_collections.webstack.deploy.plugins.module_utils.user_entries import user_entries

KEYS = ("name", "password", "roles")


def test_usable_entries_come_back_with_their_label():
    errors: list[str] = []
    entries = user_entries([{"name": "api", "password": "x"}, {"password": "y"}], "v", KEYS, "name", errors)
    assert [(e.index, e.name, e.where, e.name_ok) for e in entries] == [
        (0, "api", "v entry 'api'", True),
        (1, "", "v entry '1'", False),
    ]
    assert errors == ["v entry '1': name: expected letters, digits, '_', '.', '@' or '-', found ''."]


def test_not_a_list_not_a_mapping_and_unknown_keys():
    errors: list[str] = []
    assert user_entries({"name": "x"}, "redis_acl_users", KEYS, "name", errors) == []
    assert errors == ["redis_acl_users: expected a list of users, found dict."]
    errors = []
    entries = user_entries(["api", {"name": "ok", "pasword": "p"}], "v", KEYS, "name and password", errors)
    assert [e.name for e in entries] == ["ok"]
    assert errors == [
        "v[0]: expected a mapping with name and password.",
        "v entry 'ok': unknown key(s) pasword; expected name, password, roles.",
    ]


def test_messages_never_hold_the_password():
    errors: list[str] = []
    user_entries([{"name": "bad name!", "password": "do-not-print-me-0001", "x": 1}], "v", KEYS, "name", errors)
    assert errors and not any("do-not-print-me" in e for e in errors)
