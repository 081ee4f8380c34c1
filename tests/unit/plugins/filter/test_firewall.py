"""The decisions of the firewall filters: validation, identity of rules, stale rules."""

from __future__ import annotations

import pytest
from ansible_collections.webstack.deploy.plugins.filter.firewall import (
    firewall_delete_argv,
    firewall_normalize,
    firewall_stale,
    invalid_cidrs,
)


def test_invalid_cidrs_names_only_the_bad_entries():
    assert invalid_cidrs(["10.0.0.0/8", "192.0.2.7", "2001:db8::/32", "10.0.0.0/33", "ten", ""]) == [
        "10.0.0.0/33",
        "ten",
        "",
    ]


def test_normalize_fills_defaults_and_tags():
    (rule,) = firewall_normalize([{"name": "https", "port": 443}])
    assert rule["proto"] == "tcp"
    assert rule["from"] == "any"
    assert rule["limit"] is False
    assert rule["comment"].startswith("webstack:https:")
    assert rule["errors"] == []


def test_changed_rule_gets_a_new_identity():
    before = firewall_normalize([{"name": "api", "port": 5000}])[0]["comment"]
    after = firewall_normalize([{"name": "api", "port": 5001}])[0]["comment"]
    same = firewall_normalize([{"name": "api", "port": "5000", "proto": "tcp"}])[0]["comment"]
    assert before != after
    assert before == same


def test_duplicates_declared_by_two_roles_are_merged():
    rules = firewall_normalize([{"name": "https", "port": 443}, {"name": "https", "port": 443, "from": "any"}])
    assert len(rules) == 1


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        ({"name": "x", "port": 0}, "port"),
        ({"name": "x", "port": "9000:8000"}, "port"),
        ({"name": "x", "port": "http"}, "found 'http'"),
        ({"name": "x", "port": 80, "proto": "icmp"}, "proto"),
        ({"name": "x", "port": 80, "from": "10.0.0.0/33"}, "from"),
        ({"name": "x", "port": 80, "limit": "yes"}, "limit"),
        ({"name": "x", "port": 80, "source": "any"}, "unknown key(s) source"),
        ({"port": 80}, "'name' is required"),
        ({"name": "x"}, "'port' is required"),
    ],
)
def test_malformed_rules_say_what_is_wrong(rule, fragment):
    (normalized,) = firewall_normalize([rule])
    assert any(fragment in error for error in normalized["errors"]), normalized["errors"]


def test_port_range_is_valid():
    (rule,) = firewall_normalize([{"name": "ephemeral", "port": "8000:8010", "proto": "udp"}])
    assert rule["errors"] == []


ADDED = [
    "ufw limit from 10.0.0.0/8 to any port 22 proto tcp comment 'webstack:ssh:11111111'",
    "ufw allow 443/tcp comment 'webstack:https:22222222'",
    "ufw allow 7000/tcp comment 'webstack:retired:33333333'",
    "ufw allow 7001/tcp",
    "ufw allow 7002/tcp comment 'added by an operator'",
]


def test_stale_rules_are_only_ours_and_undeclared():
    wanted = ["webstack:ssh:11111111", "webstack:https:22222222"]
    assert firewall_stale(ADDED, wanted) == ["ufw allow 7000/tcp comment 'webstack:retired:33333333'"]


def test_nothing_declared_removes_all_of_ours_and_nothing_else():
    stale = firewall_stale(ADDED, [])
    assert len(stale) == 3
    assert all("webstack:" in line for line in stale)


def test_route_rules_are_their_own_rules():
    host, route = firewall_normalize([{"name": "api", "port": 5000}, {"name": "api", "port": 5000, "route": True}])
    assert host["route"] is False
    assert route["route"] is True
    assert host["comment"] != route["comment"]
    assert route["errors"] == []


def test_host_rules_keep_their_identity_when_route_is_spelled_out():
    # Rules made before route existed must not be re-created on upgrade.
    implicit = firewall_normalize([{"name": "https", "port": 443}])[0]["comment"]
    explicit = firewall_normalize([{"name": "https", "port": 443, "route": False}])[0]["comment"]
    assert implicit == explicit


def test_route_must_be_a_boolean():
    (rule,) = firewall_normalize([{"name": "api", "port": 5000, "route": "yes"}])
    assert any("route: expected true or false" in error for error in rule["errors"]), rule["errors"]


@pytest.mark.parametrize(
    ("line", "argv"),
    [
        ("ufw allow 7000/tcp comment 'webstack:retired:33333333'", ["ufw", "delete", "allow", "7000/tcp"]),
        (
            "ufw limit from 10.0.0.0/8 to any port 22 proto tcp comment 'webstack:ssh:11111111'",
            ["ufw", "delete", "limit", "from", "10.0.0.0/8", "to", "any", "port", "22", "proto", "tcp"],
        ),
        (
            "ufw route allow 5001/tcp comment 'webstack:api:44444444'",
            ["ufw", "route", "delete", "allow", "5001/tcp"],
        ),
        (
            "ufw route allow from 10.0.0.0/8 to any port 5001 proto tcp comment 'webstack:api:55555555'",
            ["ufw", "route", "delete", "allow", "from", "10.0.0.0/8", "to", "any", "port", "5001", "proto", "tcp"],
        ),
    ],
)
def test_delete_argv_for_host_and_route_rules(line, argv):
    assert firewall_delete_argv(line) == argv


def test_stale_route_rules_are_found():
    added = [*ADDED, "ufw route allow 5001/tcp comment 'webstack:api:44444444'"]
    assert "ufw route allow 5001/tcp comment 'webstack:api:44444444'" in firewall_stale(added, [])
