# Copyright: webstack.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions of the mongodb role: replica-set members, who initiates, users and indexes.

Each filter turns what the inventory declares into what community.mongodb's
modules take, and reports what is wrong as messages that name the variable,
what was expected and what was found (never a password).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.webstack.deploy.plugins.module_utils.user_entries import user_entries

DATABASE = re.compile(r'^[^/\\. "$*<>:|?]{1,63}$')
COLLECTION = re.compile(r"^(?!system\.)[^$\x00]{1,120}$")
INDEX_DIRECTIONS = (1, -1, "text", "2dsphere", "2d", "hashed")
INDEX_OPTIONS = {
    "unique": bool,
    "sparse": bool,
    "expire_after_seconds": int,
    "partial_filter_expression": dict,
    "hidden": bool,
}
USER_KEYS = frozenset({"name", "password", "database", "roles", "state"})
MEMBER_VARS = ("mongodb_member_host", "ansible_host")


def mongodb_members(hostnames: Iterable[str], hostvars: Mapping[str, Any], port: int = 27017) -> list[dict[str, Any]]:
    """Replica-set members for community.mongodb.mongodb_replicaset, in inventory order.

    A member is reached at its ``mongodb_member_host`` host variable, else its
    ``ansible_host``, else its inventory name; ``mongodb_member_priority``
    (default 1) and ``mongodb_member_hidden`` (default false, priority 0 then)
    come from host variables too.
    """
    members: list[dict[str, Any]] = []
    seen: set[str] = set()
    for name in hostnames or []:
        hv = hostvars.get(name) or {}
        host = next((str(hv[v]) for v in MEMBER_VARS if hv.get(v)), str(name))
        address = f"{host}:{int(hv.get('mongodb_port', port))}"
        if address in seen:
            raise AnsibleFilterError(
                f"mongodb_replicaset_group: two hosts are reached at {address}; expected one each."
            )
        seen.add(address)
        hidden = bool(hv.get("mongodb_member_hidden", False))
        member = {"host": address, "priority": 0 if hidden else hv.get("mongodb_member_priority", 1)}
        if hidden:
            member["hidden"] = True
        members.append(member)
    if len(members) > 7:
        raise AnsibleFilterError(
            f"mongodb_replicaset_group: {len(members)} members; every member votes and a replica set "
            "has at most 7 voting members."
        )
    return members


def mongodb_initiator(hostnames: Iterable[str], preferred: str | None = None) -> str:
    """The one host that initiates the replica set and creates users and indexes.

    ``preferred`` (``mongodb_replicaset_initiator``) wins when it is a member;
    otherwise the first host of the group, so every host computes the same answer.
    """
    names = list(hostnames or [])
    if not names:
        raise AnsibleFilterError("mongodb_replicaset_group: the group is empty; expected at least one MongoDB host.")
    if preferred:
        if preferred not in names:
            raise AnsibleFilterError(
                f"mongodb_replicaset_initiator: expected a host of the replica-set group ({', '.join(names)}), "
                f"found '{preferred}'."
            )
        return preferred
    return names[0]


def _password_error(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) < 16:
        return "password: expected a string of at least 16 characters (from Ansible Vault)"
    return None


def _roles(roles: Any, database: str, where: str, errors: list[str]) -> list[dict[str, str]]:
    result = []
    if not isinstance(roles, list) or not roles:
        errors.append(f"{where}: roles: expected a list such as [readWrite] or [{{role: read, db: reports}}].")
        return result
    for role in roles:
        if isinstance(role, str) and role:
            result.append({"role": role, "db": database})
        elif isinstance(role, Mapping) and role.get("role") and role.get("db", database):
            result.append({"role": str(role["role"]), "db": str(role.get("db", database))})
        else:
            errors.append(f"{where}: roles: expected a role name or {{role, db}}, found {role!r}.")
    return result


def mongodb_users(users: Any, default_database: str, variable: str = "mongodb_users") -> dict[str, Any]:
    """Normalize user entries for community.mongodb.mongodb_user.

    Returns ``{"users": [...], "errors": [...]}``; each user has name, password,
    database (the authentication database, default ``default_database``), roles
    as ``{role, db}`` dicts and state. Messages never hold a password.
    """
    errors: list[str] = []
    result: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for checked in user_entries(users, variable, USER_KEYS, "name, password, database and roles", errors):
        user, name, where = checked.user, checked.name, checked.where
        state = user.get("state", "present")
        if state not in ("present", "absent"):
            errors.append(f"{where}: state: expected present or absent, found '{state}'.")
        database = str(user.get("database", default_database))
        if not DATABASE.match(database):
            errors.append(f"{where}: database: expected a MongoDB database name, found '{database}'.")
        if (name, database) in seen:
            errors.append(f"{where}: declared twice for database '{database}'.")
        seen.add((name, database))
        entry: dict[str, Any] = {"name": name, "database": database, "state": state}
        if state == "present":
            problem = _password_error(user.get("password"))
            if problem:
                errors.append(f"{where}: {problem}.")
            entry["password"] = user.get("password")
            entry["roles"] = _roles(user.get("roles"), database, where, errors)
        result.append(entry)
    return {"users": result, "errors": errors}


def _index_name(keys: Mapping[str, Any]) -> str:
    """MongoDB's own default name: field_direction joined by underscores."""
    return "_".join(f"{field}_{direction}" for field, direction in keys.items())


def mongodb_indexes(indexes: Any, default_database: str, variable: str = "mongodb_indexes") -> dict[str, Any]:
    """Check declared indexes and shape them for community.mongodb.mongodb_index.

    An index: database (default ``default_database``), collection, keys (an
    ordered mapping field -> 1, -1, text, 2dsphere, 2d or hashed), name
    (default MongoDB's own, e.g. ``schoolId_1_grade_1``), unique, sparse,
    expire_after_seconds, partial_filter_expression, hidden, state.
    Returns ``{"indexes": [...], "errors": [...]}``.
    """
    errors: list[str] = []
    result: list[dict[str, Any]] = []
    if not isinstance(indexes, list):
        return {"indexes": [], "errors": [f"{variable}: expected a list of indexes, found {type(indexes).__name__}."]}
    seen: set[tuple[str, str, str]] = set()
    for index, spec in enumerate(indexes):
        if not isinstance(spec, Mapping):
            errors.append(f"{variable}[{index}]: expected a mapping with collection and keys.")
            continue
        collection = str(spec.get("collection", ""))
        where = f"{variable}[{index}] ({collection or 'no collection'})"
        known = {"database", "collection", "keys", "name", "state", *INDEX_OPTIONS}
        unknown = sorted(set(spec) - known)
        if unknown:
            errors.append(f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}.")
        database = str(spec.get("database", default_database))
        if not DATABASE.match(database):
            errors.append(f"{where}: database: expected a MongoDB database name, found '{database}'.")
        if not COLLECTION.match(collection):
            errors.append(f"{where}: collection: expected a collection name, found '{collection}'.")
        state = spec.get("state", "present")
        if state not in ("present", "absent"):
            errors.append(f"{where}: state: expected present or absent, found '{state}'.")
        keys = spec.get("keys")
        if not isinstance(keys, Mapping) or not keys:
            if state == "present" or "name" not in spec:
                errors.append(f"{where}: keys: expected a mapping field -> 1 or -1, such as {{schoolId: 1}}.")
            keys = {}
        for field, direction in keys.items():
            if isinstance(direction, bool) or direction not in INDEX_DIRECTIONS:
                choices = ", ".join(map(str, INDEX_DIRECTIONS))
                errors.append(f"{where}: keys: {field}: expected one of {choices}, found {direction!r}.")
        options: dict[str, Any] = {"name": str(spec.get("name") or _index_name(keys))}
        for option, kind in INDEX_OPTIONS.items():
            if option not in spec:
                continue
            value = spec[option]
            if not isinstance(value, kind) or (kind is int and (isinstance(value, bool) or value < 0)):
                errors.append(f"{where}: {option}: expected {kind.__name__}, found {value!r}.")
                continue
            camel = re.sub(r"_(\w)", lambda m: m.group(1).upper(), option)
            options[camel] = value
        identity = (database, collection, options["name"])
        if identity in seen:
            errors.append(f"{where}: index '{options['name']}' declared twice on {database}.{collection}.")
        seen.add(identity)
        entry: dict[str, Any] = {"database": database, "collection": collection, "options": options, "state": state}
        if state == "present":
            entry["keys"] = dict(keys)
        result.append(entry)
    return {"indexes": result, "errors": errors}


def mongodb_keyfile_errors(content: Any, variable: str = "mongodb_keyfile_content") -> list[str]:
    """Messages for a keyFile that mongod would refuse (6-1024 base64 characters); never quotes it."""
    if not isinstance(content, str) or not content.strip():
        return [f"{variable}: expected the replica set's shared key (from Ansible Vault), found none."]
    text = "".join(content.split())
    if not 6 <= len(text) <= 1024:
        return [f"{variable}: expected 6 to 1024 base64 characters, found {len(text)}."]
    if not re.fullmatch(r"[A-Za-z0-9+/=]+", text):
        return [f"{variable}: expected only base64 characters (A-Z, a-z, 0-9, +, /, =)."]
    return []


# Top-level sections of mongod's configuration file (MongoDB's "Configuration File Options").
CONFIG_SECTIONS = frozenset(
    {
        "systemLog",
        "processManagement",
        "cloud",
        "net",
        "security",
        "setParameter",
        "storage",
        "operationProfiling",
        "replication",
        "sharding",
        "auditLog",
    }
)
# Settings of the template and the role variable each one comes from.
CONFIG_VARIABLES = {
    "net.port": "mongodb_port",
    "net.bindIp": "mongodb_bind_addresses",
    "storage.dbPath": "mongodb_storage_path",
    "storage.wiredTiger.engineConfig.cacheSizeGB": "mongodb_wiredtiger_cache_gb",
    "systemLog.path": "mongodb_log_path",
    "security.authorization": "mongodb_authorization",
    "security.keyFile": "mongodb_keyfile_path",
    "replication.replSetName": "mongodb_replicaset_name",
}
WILDCARDS = ("0.0.0.0", "::", "*")
REPLSET_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _setting(conf: Mapping[str, Any], path: str) -> Any:
    value: Any = conf
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def mongodb_config_errors(text: str) -> list[str]:
    """What mongod would refuse, or what would leave a member unusable, in a rendered mongod.conf.

    mongod reads its configuration as YAML: the file must parse, hold known
    sections only, and the settings the role writes must have the types and
    ranges mongod documents. Each message names the setting and the role
    variable it comes from.
    """
    import yaml

    try:
        conf = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return [f"mongod.conf: expected YAML, found a syntax error: {exc}."]
    if not isinstance(conf, Mapping):
        return [f"mongod.conf: expected a mapping of sections, found {type(conf).__name__}."]
    errors: list[str] = []

    def bad(path: str, expected: str, found: Any) -> None:
        variable = CONFIG_VARIABLES.get(path)
        where = f"mongod.conf {path}" + (f" ({variable})" if variable else "")
        errors.append(f"{where}: expected {expected}, found {found!r}.")

    unknown = sorted(set(conf) - CONFIG_SECTIONS)
    if unknown:
        errors.append(f"mongod.conf: unknown section(s) {', '.join(map(str, unknown))}.")
    port = _setting(conf, "net.port")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        bad("net.port", "a port number 1-65535", port)
    bind = _setting(conf, "net.bindIp")
    addresses = [a.strip() for a in bind.split(",")] if isinstance(bind, str) else []
    if not addresses or not all(addresses):
        bad("net.bindIp", "a comma-separated list of addresses", bind)
    elif any(a in WILDCARDS for a in addresses):
        bad("net.bindIp", "no wildcard address (mongod would listen everywhere)", bind)
    for path in ("storage.dbPath", "systemLog.path"):
        value = _setting(conf, path)
        if not isinstance(value, str) or not value.startswith("/"):
            bad(path, "an absolute path", value)
    cache = _setting(conf, "storage.wiredTiger.engineConfig.cacheSizeGB")
    if cache is not None and (isinstance(cache, bool) or not isinstance(cache, int | float) or cache < 0.25):
        bad("storage.wiredTiger.engineConfig.cacheSizeGB", "a size in GB of at least 0.25", cache)
    authorization = _setting(conf, "security.authorization")
    if authorization not in ("enabled", "disabled"):
        bad("security.authorization", "enabled or disabled", authorization)
    key_file = _setting(conf, "security.keyFile")
    if key_file is not None and (not isinstance(key_file, str) or not key_file.startswith("/")):
        bad("security.keyFile", "an absolute path", key_file)
    replset = _setting(conf, "replication.replSetName")
    if "replication" in conf and (not isinstance(replset, str) or not REPLSET_NAME.match(replset)):
        bad("replication.replSetName", "letters, digits, '_' or '-'", replset)
    if isinstance(replset, str) and authorization == "enabled" and key_file is None:
        bad("security.keyFile", "a key file: members of a replica set with authorization authenticate with it", None)
    return errors


class FilterModule:
    """MongoDB filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "mongodb_members": mongodb_members,
            "mongodb_initiator": mongodb_initiator,
            "mongodb_users": mongodb_users,
            "mongodb_indexes": mongodb_indexes,
            "mongodb_keyfile_errors": mongodb_keyfile_errors,
            "mongodb_config_errors": mongodb_config_errors,
        }
