# Copyright: webstack.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that pick host addresses: what a data service binds to and whom it lets in."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError

WILDCARDS = frozenset({"0.0.0.0", "::", "*", "[::]"})


def _address(value: Any) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(str(value).strip().lstrip("-"))
    except ValueError:
        return None


def private_addresses(addresses: Iterable[Any]) -> list[str]:
    """Return the private (RFC 1918, ULA) addresses of ``addresses``, in order, without duplicates.

    Loopback, link-local, public and malformed entries are left out, so the
    result is what a service may bind to for other hosts of a private network.
    """
    result: list[str] = []
    for value in addresses or []:
        addr = _address(value)
        if addr is None or addr.is_loopback or addr.is_link_local or addr.is_unspecified or not addr.is_private:
            continue
        if str(addr) not in result:
            result.append(str(addr))
    return result


def bind_address_errors(addresses: Iterable[Any], variable: str = "bind addresses") -> list[str]:
    """Messages for bind addresses that are not IP addresses or that mean "every address"."""
    values = list(addresses or [])
    if not values:
        return [f"{variable} is empty: expected at least one address of the host, such as 127.0.0.1 or 10.0.1.5."]
    errors = []
    for value in values:
        text = str(value).strip()
        if text.lstrip("-") in WILDCARDS:
            errors.append(
                f"{variable}: '{text}' listens on every address; expected the host's private addresses "
                "(the service must not be reachable from public networks)."
            )
        elif _address(text) is None:
            errors.append(f"{variable}: expected an IP address such as 10.0.1.5, found '{text}'.")
    return errors


def _facts_address(hostvars: Mapping[str, Any]) -> str | None:
    facts = hostvars.get("ansible_facts") or {}
    for source in (facts.get("default_ipv4"), hostvars.get("ansible_default_ipv4")):
        if isinstance(source, Mapping) and _address(source.get("address")):
            return str(source["address"])
    return None


def host_addresses(hostnames: Iterable[str], hostvars: Mapping[str, Any], variable: str = "hosts") -> list[str]:
    """Return the address each host of ``hostnames`` is reached at, sorted and without duplicates.

    The address of the default route (from gathered facts) comes first; a host
    without facts is taken at ``ansible_host`` when that is an IP address. A host
    with neither raises an error naming it, so a firewall rule is never silently
    missing.
    """
    found: set[str] = set()
    missing: list[str] = []
    for name in hostnames or []:
        hv = hostvars.get(name) or {}
        address = _facts_address(hv)
        if address is None and _address(hv.get("ansible_host")):
            address = str(_address(hv.get("ansible_host")))
        if address is None:
            missing.append(str(name))
        else:
            found.add(address)
    if missing:
        raise AnsibleFilterError(
            f"{variable}: no address known for {', '.join(missing)}; expected gathered facts "
            "(run a play on those hosts earlier in the same run) or ansible_host set to an IP address."
        )
    return sorted(found, key=lambda a: (ipaddress.ip_address(a).version, ipaddress.ip_address(a)))


def allow_from(addresses: Iterable[str], name: str, port: int | str, proto: str = "tcp") -> list[dict[str, Any]]:
    """Firewall rules (the form of ``<role>_firewall_rules``) opening ``port`` to each address."""
    rules = []
    for address in addresses or []:
        addr = _address(address)
        source = f"{addr}/{addr.max_prefixlen}" if addr is not None else str(address)
        rules.append({"name": name, "port": port, "proto": proto, "from": source})
    return rules


class FilterModule:
    """Host address filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "private_addresses": private_addresses,
            "bind_address_errors": bind_address_errors,
            "host_addresses": host_addresses,
            "allow_from": allow_from,
        }
