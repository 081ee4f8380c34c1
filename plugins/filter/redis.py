# Copyright: webstack.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters the redis role uses to check its input without ever echoing a secret."""

from __future__ import annotations

import re
from typing import Any

from ansible_collections.webstack.deploy.plugins.module_utils.user_entries import user_entries

USER_KEYS = frozenset({"name", "password", "rules", "enabled"})
MEMORY = re.compile(r"^[0-9]+(b|k|kb|m|mb|g|gb)?$", re.IGNORECASE)
MIN_PASSWORD = 16


def redis_password_errors(password: Any, variable: str) -> list[str]:
    """Messages for a password that is missing, too short or not a string (the value is never quoted)."""
    if not isinstance(password, str) or not password:
        return [f"{variable}: expected a password string (from Ansible Vault), found none."]
    if len(password) < MIN_PASSWORD:
        return [f"{variable}: expected at least {MIN_PASSWORD} characters, found {len(password)}."]
    if any(c.isspace() for c in password):
        return [f"{variable}: expected no white space in the password."]
    return []


def redis_acl_errors(users: Any, variable: str = "redis_acl_users") -> list[str]:
    """Messages for ACL user entries that are malformed; names are quoted, passwords never."""
    errors: list[str] = []
    seen: set[str] = set()
    for entry in user_entries(users, variable, USER_KEYS, "name, password and rules", errors):
        user, name, where = entry.user, entry.name, entry.where
        if entry.name_ok and name == "default":
            errors.append(f"{where}: the default user is set by redis_password and redis_default_user_rules.")
        elif entry.name_ok and name in seen:
            errors.append(f"{where}: the name appears twice.")
        seen.add(name)
        errors.extend(f"{where}: {msg.split(': ', 1)[1]}" for msg in redis_password_errors(user.get("password"), "x"))
        rules = user.get("rules")
        if not isinstance(rules, str) or not rules.strip():
            errors.append(f"{where}: rules: expected ACL rules such as '~* +@read', found {rules!r}.")
        elif any(tok.startswith((">", "<", "#", "!")) or tok in ("nopass", "resetpass") for tok in rules.split()):
            errors.append(f"{where}: rules: passwords are set from 'password' only, not in rules.")
        if not isinstance(user.get("enabled", True), bool):
            errors.append(f"{where}: enabled: expected true or false, found {user.get('enabled')!r}.")
    return errors


def redis_memory_errors(value: Any, variable: str) -> list[str]:
    """Messages for a memory size that redis.conf would not accept."""
    if MEMORY.match(str(value).strip()):
        return []
    return [f"{variable}: expected a size such as 0, 512mb or 2gb, found '{value}'."]


class FilterModule:
    """Redis filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "redis_password_errors": redis_password_errors,
            "redis_acl_errors": redis_acl_errors,
            "redis_memory_errors": redis_memory_errors,
        }
