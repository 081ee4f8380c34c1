# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters of in-host blue/green releases: the upstream names nginx and the switch share, an app list with
every default filled in, the release plan of a run, the release record, and a colour's environment (its env
file, and error text without its values).

The app list that ``bluegreen_apps`` returns carries the names of an app's environment, not its values: it
is kept in facts, which Ansible prints at -v. The values only pass through ``bluegreen_env``, in tasks that
print nothing (no_log)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible.errors import AnsibleFilterError
from ansible_collections.webstack.deploy.plugins.module_utils import bluegreen as bg

# Per-app settings and the role variable each one falls back to.
APP_DEFAULTS = {
    "port": "container_port",
    "health_path": "health_path",
    "verify_path": None,  # the app's health_path
    "verify_host": "verify_host",
    "env": None,
    "networks": None,
    "volumes": None,
    "labels": None,
    "smoke_tests": None,
}


def upstream_name(app: str, colour: str | None = None) -> str:
    try:
        return bg.upstream_name(app, colour)
    except ValueError as err:
        raise AnsibleFilterError(str(err)) from err


def bluegreen_apps(apps: list[Mapping[str, Any]], defaults: Mapping[str, Any] | None = None) -> list[dict]:
    """The apps with every default filled in and their settings digest; errors name the app and the field."""
    defaults = defaults or {}
    errors, out, seen = [], [], set()
    for index, app in enumerate(apps or []):
        label = app.get("name", "?") if isinstance(app, Mapping) else repr(app)
        where = f"app {index} ({label})"
        if not isinstance(app, Mapping):
            errors.append(f"{where}: expected a mapping with name, image, version, colour_ports")
            continue
        name = app.get("name")
        if not isinstance(name, str) or not bg.APP_NAME.match(name):
            errors.append(f"{where}: name must match {bg.APP_NAME.pattern}, found {name!r}")
            continue
        if name in seen:
            errors.append(f"{where}: name {name} is used twice")
        seen.add(name)
        if not isinstance(app.get("image"), str) or not app["image"]:
            errors.append(f"{where}: image must be an image repository without tag, found {app.get('image')!r}")
        if not bg.VERSION.match(str(app.get("version", ""))):
            errors.append(f"{where}: version must be an image tag, found {app.get('version')!r}")
        ports = app.get("colour_ports")
        if not isinstance(ports, Mapping) or sorted(ports) != list(bg.COLOURS):
            errors.append(f"{where}: colour_ports must be {{blue: <port>, green: <port>}}, found {ports!r}")
            continue
        try:
            numbers = [int(ports[c]) for c in bg.COLOURS]
        except (TypeError, ValueError):
            numbers = [0, 0]
        if not all(1 <= n <= 65535 for n in numbers) or numbers[0] == numbers[1]:
            errors.append(f"{where}: colour_ports must be two different ports 1-65535, found {dict(ports)}")
        full = {**{k: None for k in APP_DEFAULTS}, **dict(app), "version": str(app.get("version", ""))}
        for key, fallback in APP_DEFAULTS.items():
            if full.get(key) is None:
                full[key] = defaults.get(fallback) if fallback else None
        full["port"] = int(full["port"] or 5000)
        full["health_path"] = full["health_path"] or "/health"
        full["verify_path"] = full["verify_path"] or full["health_path"]
        full["verify_host"] = full["verify_host"] or ""
        full["env"] = dict(full["env"] or {})
        errors.extend(f"{where}: {error}" for error in bg.env_errors(full["env"]))
        full["networks"] = list(full["networks"] or [])
        full["volumes"] = list(full["volumes"] or [])
        full["labels"] = dict(full["labels"] or {})
        full["smoke_tests"] = list(full["smoke_tests"] or [])
        full["colour_ports"] = {c: int(ports[c]) for c in bg.COLOURS} if numbers != [0, 0] else dict(ports)
        full["upstream"] = bg.upstream_name(name)
        for path_key in ("health_path", "verify_path"):
            if not str(full[path_key]).startswith("/"):
                errors.append(f"{where}: {path_key} must start with /, found {full[path_key]!r}")
        out.append(full)
    used = [p for a in out for p in a["colour_ports"].values()]
    if len(used) != len(set(used)):
        errors.append(f"colour_ports: every app needs ports of its own, found {[a['colour_ports'] for a in out]}")
    if errors:
        raise AnsibleFilterError("bluegreen_apps: " + "; ".join(errors))
    for full in out:
        # Digest of what the container runs with (the image's tag is the version, part of the image).
        full["digest"] = bg.config_digest(
            {
                "image": full["image"],
                "port": full["port"],
                "env": full["env"],
                "networks": full["networks"],
                "volumes": full["volumes"],
                "labels": full["labels"],
            }
        )
        # The values stay out of the list (facts are printed): only the names remain.
        full["env_names"] = sorted(str(k) for k in full.pop("env"))
    return out


def bluegreen_rollback_apps(
    apps: list[Mapping[str, Any]], rollback_app: str = "", defaults: Mapping[str, Any] | None = None
) -> list[dict]:
    """What the rollback's switch needs of the apps it moves back - name, colour_ports, health_path - and
    nothing else: the rest of each app (its ``env`` above all) is not even read, so the switch does not wait
    for it. ``rollback_app``: an app, ``all``, or empty (the only app). Errors name bluegreen_rollback_app."""
    names = [a.get("name") if isinstance(a, Mapping) else None for a in apps or []]
    if rollback_app == "all":
        wanted = names
    elif rollback_app:
        wanted = [rollback_app]
    else:
        wanted = names if len(names) == 1 else []
    if not wanted or any(n not in names for n in wanted) or None in wanted:
        several = " (several apps: name one)" if not rollback_app and len(names) > 1 else ""
        raise AnsibleFilterError(
            f"bluegreen: expected bluegreen_rollback_app (app) as one of {', '.join(str(n) for n in names)} or 'all'; "
            f"found '{rollback_app}'{several}."
        )
    out = []
    for app in apps:
        if app.get("name") not in wanted:
            continue
        ports = app.get("colour_ports")
        if not isinstance(ports, Mapping) or sorted(ports) != list(bg.COLOURS):
            where = f"bluegreen: app {app.get('name')}"
            raise AnsibleFilterError(f"{where}: colour_ports must be {{blue: <port>, green: <port>}}, found {ports!r}")
        out.append(
            {
                "name": app["name"],
                "colour_ports": {c: int(ports[c]) for c in bg.COLOURS},
                "health_path": app.get("health_path") or (defaults or {}).get("health_path") or "/health",
            }
        )
    return out


def bluegreen_env(apps: list[Mapping[str, Any]], name: str, extra: Mapping[str, Any] | None = None) -> dict:
    """The environment of a colour of app ``name`` of ``apps`` (the platform's list, as given), with ``extra``
    (the colour and port variables; an empty name is left out). Use it only where nothing is printed."""
    found = [a for a in apps or [] if isinstance(a, Mapping) and a.get("name") == name]
    if not found:
        raise AnsibleFilterError(f"bluegreen_env: no app named {name!r}")
    try:
        return bg.container_env(found[0].get("env") or {}, {k: v for k, v in (extra or {}).items() if k})
    except ValueError as err:
        raise AnsibleFilterError(f"bluegreen_env: app {name}: {err}") from err


def bluegreen_env_file(env: Mapping[str, Any]) -> str:
    try:
        return bg.env_file_text(env)
    except ValueError as err:
        raise AnsibleFilterError(f"bluegreen_env_file: {err}") from err


def bluegreen_redact(text: Any, env: Mapping[str, Any] | None) -> str:
    return bg.redact(text, env)


def bluegreen_plan(
    apps: list[Mapping[str, Any]],
    statuses: Mapping[str, Any],
    release_app: str = "",
    release_version: str = "",
    nginx: bool = True,
) -> list[dict]:
    try:
        return bg.plan(apps, statuses, release_app or "", release_version or "", nginx)
    except ValueError as err:
        raise AnsibleFilterError(str(err)) from err


def release_record(
    record: Mapping[str, Any] | None,
    event: str,
    app: str,
    current: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    at: str,
    previous_stops_at: str | None = None,
    by: str = "",
    history_size: int = 10,
) -> dict:
    try:
        return bg.next_record(
            record, event, app, current, previous or None, at, previous_stops_at or None, by, history_size
        )
    except (ValueError, KeyError) as err:
        raise AnsibleFilterError(f"release_record: {err}") from err


class FilterModule:
    """Blue/green filters."""

    def filters(self) -> dict[str, Any]:
        return {
            "upstream_name": upstream_name,
            "bluegreen_apps": bluegreen_apps,
            "bluegreen_rollback_apps": bluegreen_rollback_apps,
            "bluegreen_plan": bluegreen_plan,
            "release_record": release_record,
            "bluegreen_env": bluegreen_env,
            "bluegreen_env_file": bluegreen_env_file,
            "bluegreen_redact": bluegreen_redact,
        }
