# Copyright: webstack.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the firewall role uses to merge, check and reconcile ufw rules."""

from __future__ import annotations

import hashlib
import ipaddress
import json
from typing import Any

RULE_KEYS = frozenset({"name", "port", "proto", "from", "limit", "route"})


def invalid_cidrs(values: list[Any]) -> list[str]:
    """Return the entries of ``values`` that are not an IPv4/IPv6 address or network."""
    bad = []
    for value in values or []:
        try:
            ipaddress.ip_network(str(value), strict=False)
        except ValueError:
            bad.append(str(value))
    return bad


def _port_error(port: Any) -> str | None:
    text = str(port)
    parts = text.split(":")
    if len(parts) > 2 or not all(p.isdigit() for p in parts):
        return f"expected a port number (1-65535) or a range 'from:to', found '{text}'"
    numbers = [int(p) for p in parts]
    if not all(1 <= n <= 65535 for n in numbers) or (len(numbers) == 2 and numbers[0] >= numbers[1]):
        return f"expected a port number (1-65535) or a range 'from:to', found '{text}'"
    return None


def _rule_errors(rule: dict[str, Any]) -> list[str]:
    name = rule.get("name", "?")
    where = f"firewall rule '{name}'"
    errors = []
    unknown = sorted(set(rule) - RULE_KEYS)
    if unknown:
        errors.append(f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(RULE_KEYS))}.")
    if not rule.get("name"):
        errors.append(f"{where}: 'name' is required.")
    if "port" not in rule:
        errors.append(f"{where}: 'port' is required.")
    else:
        port_error = _port_error(rule["port"])
        if port_error:
            errors.append(f"{where}: port: {port_error}.")
    if rule.get("proto", "tcp") not in ("tcp", "udp"):
        errors.append(f"{where}: proto: expected tcp or udp, found '{rule.get('proto')}'.")
    source = rule.get("from", "any")
    if source != "any" and invalid_cidrs([source]):
        errors.append(f"{where}: from: expected a CIDR such as 10.0.0.0/8 or 'any', found '{source}'.")
    if not isinstance(rule.get("limit", False), bool):
        errors.append(f"{where}: limit: expected true or false, found '{rule.get('limit')}'.")
    if not isinstance(rule.get("route", False), bool):
        errors.append(f"{where}: route: expected true or false, found '{rule.get('route')}'.")
    return errors


def firewall_normalize(rules: list[dict[str, Any]], tag: str = "webstack:") -> list[dict[str, Any]]:
    """Normalize declared rules, drop duplicates and attach the identifying ufw comment.

    Each result has name, port, proto, from, limit, route, comment and errors (a list of
    messages naming the rule and the key that is wrong; empty when the rule is valid).
    The comment holds a short hash of the rule, so a changed rule is a new rule and
    the old one is found stale and removed.

    ``route: true`` makes a rule for forwarded traffic (``ufw route``): on a Docker
    host that is what decides whether a published port of a container can be
    reached, and ``port`` is then the port inside the container (the destination
    after Docker's address translation).
    """
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for raw in rules or []:
        if not isinstance(raw, dict):
            result.append({"name": str(raw), "comment": "", "errors": [f"firewall rule {raw!r}: expected a mapping."]})
            continue
        rule = {
            "name": str(raw.get("name", "")),
            "port": str(raw.get("port", "")),
            "proto": raw.get("proto", "tcp"),
            "from": str(raw.get("from", "any")),
            "limit": raw.get("limit", False),
            "route": raw.get("route", False),
        }
        errors = _rule_errors(raw)
        identity = {k: rule[k] for k in ("port", "proto", "from", "limit")}
        if rule["route"]:
            # Only route rules carry the key: host rules keep the identity they always had.
            identity["route"] = True
        spec = json.dumps(identity, sort_keys=True)
        digest = hashlib.sha256(spec.encode()).hexdigest()[:8]
        rule["comment"] = f"{tag}{rule['name']}:{digest}"
        rule["errors"] = errors
        if rule["comment"] in seen:
            continue
        seen.add(rule["comment"])
        result.append(rule)
    return result


def firewall_stale(added_lines: list[str], wanted_comments: list[str], tag: str = "webstack:") -> list[str]:
    """Return the ``ufw show added`` lines this role added that are no longer wanted.

    Only lines whose comment starts with ``tag`` are considered, so rules added by
    hand are never touched.
    """
    wanted = set(wanted_comments or [])
    stale = []
    for line in added_lines or []:
        line = line.strip()
        if not line.startswith("ufw ") or f" comment '{tag}" not in line:
            continue
        comment = line.rsplit(" comment '", 1)[1].rstrip("'")
        if comment not in wanted:
            stale.append(line)
    return stale


def firewall_delete_argv(line: str) -> list[str]:
    """The ``ufw`` command (argv) that deletes the rule of one ``ufw show added`` line.

    ``ufw allow 443/tcp comment 'x'`` becomes ``ufw delete allow 443/tcp``; a route
    rule, ``ufw route allow ...``, becomes ``ufw route delete allow ...``.
    """
    words = line.strip()
    if words.startswith("ufw "):
        words = words[4:]
    words = words.split(" comment '", 1)[0]
    argv = words.split()
    if argv[:1] == ["route"]:
        return ["ufw", "route", "delete", *argv[1:]]
    return ["ufw", "delete", *argv]


class FilterModule:
    """Firewall filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "invalid_cidrs": invalid_cidrs,
            "firewall_normalize": firewall_normalize,
            "firewall_stale": firewall_stale,
            "firewall_delete_argv": firewall_delete_argv,
        }
