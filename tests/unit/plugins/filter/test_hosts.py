"""Which addresses a data service binds to and whom the firewall lets in."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.webstack.deploy.plugins.filter.hosts import (
    allow_from,
    bind_address_errors,
    host_addresses,
    private_addresses,
)


def test_private_addresses_keep_only_private_ones_in_order():
    found = ["172.18.0.3", "127.0.0.1", "93.184.216.34", "10.0.1.5", "169.254.1.1", "172.18.0.3", "bogus", "fd00::1"]
    assert private_addresses(found) == ["172.18.0.3", "10.0.1.5", "fd00::1"]


def test_private_addresses_of_nothing_is_empty():
    assert private_addresses(None) == []


@pytest.mark.parametrize("wildcard", ["0.0.0.0", "::", "*", "-::"])
def test_wildcards_are_refused(wildcard):
    (message,) = bind_address_errors(["127.0.0.1", wildcard], "redis_bind_addresses")
    assert message.startswith("redis_bind_addresses:") and wildcard in message and "every address" in message


def test_bad_and_empty_bind_addresses_are_named():
    assert bind_address_errors(["127.0.0.1", "-::1", "10.0.0.5"], "v") == []
    (message,) = bind_address_errors(["10.0.0.300"], "redis_bind_addresses")
    assert "expected an IP address" in message and "10.0.0.300" in message
    assert "is empty" in bind_address_errors([], "redis_bind_addresses")[0]


def test_host_addresses_prefer_facts_then_an_ip_ansible_host():
    hostvars = {
        "app1": {"ansible_facts": {"default_ipv4": {"address": "172.18.0.4"}}, "ansible_host": "app1"},
        "app2": {"ansible_host": "10.0.2.7"},
        "app3": {"ansible_default_ipv4": {"address": "172.18.0.2"}},
    }
    assert host_addresses(["app1", "app2", "app3", "app1"], hostvars) == ["10.0.2.7", "172.18.0.2", "172.18.0.4"]


def test_host_without_any_address_is_an_error_naming_it():
    hostvars = {"app1": {"ansible_host": "app1.internal"}, "app2": {"ansible_host": "10.0.0.2"}}
    with pytest.raises(AnsibleFilterError, match=r"redis_client_addresses: no address known for app1;"):
        host_addresses(["app1", "app2"], hostvars, "redis_client_addresses")


def test_no_hosts_no_addresses():
    assert host_addresses([], {}) == []


def test_allow_from_makes_one_host_rule_per_address():
    assert allow_from(["10.0.0.4", "fd00::2"], "redis", 6379) == [
        {"name": "redis", "port": 6379, "proto": "tcp", "from": "10.0.0.4/32"},
        {"name": "redis", "port": 6379, "proto": "tcp", "from": "fd00::2/128"},
    ]
    assert allow_from([], "redis", 6379) == []
