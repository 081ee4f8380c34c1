# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Decisions of an in-host blue/green release, free of Ansible and of the host so they can be unit tested.

* the nginx upstream names of an app and of its colours (``upstream_name``), used by the nginx role's
  templates and by the switch, so both always agree;
* which version a run keeps or releases for each app (``plan_app``): the release record on the host wins
  over the inventory's version once a release happened, so a converge never moves the live version;
* the release record written after a release or a rollback (``next_record``);
* what an app's health answer must say (``judge_answer``) and where the live colour is kept for nginx
  (``read_live``/``write_live``);
* a colour's environment as the root-only env file its container reads (``container_env``,
  ``env_file_text``), and error text with the environment's values taken out (``redact``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from typing import Any

COLOURS = ("blue", "green")
# Where a host keeps its release records and nginx's live-colour files: the options of every module
# that reads them (documented once in plugins/doc_fragments/bluegreen.py).
HOST_PATHS_SPEC = {
    "state_dir": {"type": "path", "default": "/var/lib/webstack/releases"},
    "live_dir": {"type": "path", "default": "/etc/nginx/webstack/live"},
}
APP_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
VERSION = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
# Docker reads an env file line by line as NAME=VALUE and strips each line: a name holds no '=', no space
# and does not start with '#'; a value holds no line break and no leading or trailing space.
ENV_NAME = re.compile(r"^[^#=\s][^=\s]*$")
# Environment values shorter than this are not taken out of error text (they would mangle it, and say
# nothing on their own: a port, a colour).
REDACT_MIN_LENGTH = 4
REDACTED = "********"
# The settings of a colour's container that a change of forces a new release.
CONFIG_KEYS = ("image", "port", "env", "networks", "volumes", "labels")


def upstream_name(app: str, colour: str | None = None) -> str:
    """nginx upstream of ``app`` (``webstack_<app>``, ``-`` and ``.`` as ``_``), or of one of its colours."""
    if not isinstance(app, str) or not APP_NAME.match(app):
        raise ValueError(f"upstream_name: expected an app name matching {APP_NAME.pattern}, found {app!r}")
    base = "webstack_" + re.sub(r"[-.]", "_", app)
    if colour is None:
        return base
    if colour not in COLOURS:
        raise ValueError(f"upstream_name: expected colour blue or green, found {colour!r}")
    return f"{base}_{colour}"


def other_colour(colour: str | None) -> str:
    """The idle colour when ``colour`` is live (blue when nothing is)."""
    return "green" if colour == "blue" else "blue"


def config_digest(app: Mapping[str, Any]) -> str:
    """A short digest of the container settings of ``app`` (a changed one needs a new release)."""
    wanted = {key: app.get(key) for key in CONFIG_KEYS}
    wanted["env"] = {str(k): str(v) for k, v in (app.get("env") or {}).items()}
    text = json.dumps(wanted, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_app(
    app: Mapping[str, Any],
    status: Mapping[str, Any],
    release: Mapping[str, Any] | None = None,
    nginx: bool = True,
) -> dict[str, Any]:
    """What a run does for one app.

    ``app``: the app's entry of the platform (name, image, version, ...) with ``digest`` (``config_digest``).
    ``status``: what the host has (``record``, ``containers`` per colour with running/image/digest, ``live``:
    the colour nginx sends the app to). ``release``: ``{"version": ...}`` when the operator releases this app
    now (playbooks/deploy.yml), else None: the run converges.

    A converge keeps the version of the release record once there is one (the last release or rollback made
    it live); only a release moves it. Returns the version and image wanted, the live and the target colour,
    whether a release is needed and why, and where the version came from.
    """
    record = status.get("record") or {}
    containers = status.get("containers") or {}
    live = record.get("colour") or ""
    if release is not None:
        version, source = str(release["version"]), "release"
    elif record.get("version"):
        version, source = str(record["version"]), "record"
    else:
        version, source = str(app["version"]), "inventory"
    image = f"{app['image']}:{version}"
    if source == "record" and record.get("image"):
        image = record["image"]
    live_container = containers.get(live) or {}
    if not live:
        why = f"no release recorded for {app['name']}"
    elif record.get("version") != version:
        why = f"{record.get('version')} is live"
    elif record.get("image") != image:
        why = f"the live image is {record.get('image')}"
    elif not live_container.get("running"):
        why = f"container {app['name']}-{live} is not running"
    elif live_container.get("image") != image:
        why = f"container {app['name']}-{live} runs {live_container.get('image')}"
    elif live_container.get("digest") != app.get("digest"):
        why = f"the settings of {app['name']}-{live} differ from the wanted ones"
    elif nginx and status.get("live") != live:
        why = f"nginx sends {app['name']} to {status.get('live') or 'nothing'}, not to the live colour {live}"
    else:
        why = ""
    # A release goes to the idle colour; a repair of the live version (its container stopped or changed)
    # too, so the broken one keeps its place until the new one is healthy.
    return {
        "name": app["name"],
        "version": version,
        "image": image,
        "source": source,
        "inventory_version": str(app.get("version", "")),
        "live_colour": live,
        "live_version": record.get("version") or "",
        "target_colour": other_colour(live) if live else "blue",
        "needs_release": bool(why),
        "reason": why,
    }


def plan(
    apps: list[Mapping[str, Any]],
    statuses: Mapping[str, Mapping[str, Any]],
    release_app: str = "",
    release_version: str = "",
    nginx: bool = True,
) -> list[dict[str, Any]]:
    """``plan_app`` for every app; ``release_app``/``release_version`` name the one app a release moves.

    A release moves that app only: every other app is left exactly as it is, even one a converge would
    release or repair (no release recorded yet, its container stopped or its settings changed) - that is
    site.yml's work, and its line says so (``left_alone``: what a converge would do).
    """
    names = [a["name"] for a in apps]
    if release_app and release_app not in names:
        raise ValueError(f"app: expected one of {', '.join(names) or 'no apps'}, found {release_app!r}")
    if release_app and not VERSION.match(str(release_version)):
        raise ValueError(f"version: expected an image tag (letters, digits, _ . -), found {release_version!r}")
    out = []
    for app in apps:
        release = {"version": release_version} if app["name"] == release_app else None
        line = plan_app(app, statuses.get(app["name"]) or {}, release, nginx)
        line["left_alone"] = ""
        if release_app and app["name"] != release_app and line["needs_release"]:
            line["left_alone"] = line["reason"]
            line["needs_release"], line["reason"] = False, ""
        out.append(line)
    return out


def next_record(
    record: Mapping[str, Any] | None,
    event: str,
    app: str,
    current: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    at: str,
    previous_stops_at: str | None = None,
    by: str = "",
    history_size: int = 10,
) -> dict[str, Any]:
    """The release record after ``event`` (release or rollback): what is live, what was, and a history."""
    if event not in ("release", "rollback"):
        raise ValueError(f"event: expected release or rollback, found {event!r}")

    def side(entry: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "colour": entry["colour"],
            "version": str(entry["version"]),
            "image": entry["image"],
            "port": int(entry["port"]),
        }

    now = side(current)
    history = [{"event": event, "at": at, "by": by, **{k: now[k] for k in ("colour", "version", "image")}}]
    history += list((record or {}).get("history") or [])
    return {
        "app": app,
        "event": event,
        "at": at,
        "by": by,
        **now,
        "previous": side(previous) if previous else None,
        "previous_stops_at": previous_stops_at if previous else None,
        "history": history[: max(1, int(history_size))],
    }


def judge_answer(
    status: int | None,
    body: str,
    want_status: int = 200,
    expect: Mapping[str, Any] | None = None,
    contains: str = "",
    error: str | None = None,
) -> str | None:
    """Why an HTTP answer is not the expected one (None when it is)."""
    if status is None:
        return error or "no answer"
    if status != want_status:
        return f"HTTP {status} (expected {want_status})"
    if contains and contains not in body:
        return f"body does not contain {contains!r}"
    if expect:
        try:
            document = json.loads(body)
        except ValueError:
            return "body is not JSON"
        if not isinstance(document, dict):
            return "body is not a JSON object"
        for key, want in expect.items():
            if str(document.get(key)) != str(want):
                return f"{key} is {document.get(key)!r} (expected {str(want)!r})"
    return None


def read_live(live_dir: str, app: str) -> str:
    """The colour nginx sends ``app`` to ('' when the file is missing or holds something else)."""
    try:
        with open(os.path.join(live_dir, app), encoding="utf-8") as handle:
            colour = handle.read().strip()
    except FileNotFoundError:
        return ""
    return colour if colour in COLOURS else ""


def write_live(live_dir: str, app: str, colour: str) -> None:
    """Point nginx at ``colour`` of ``app``: one atomic rename, read by nginx on the next request."""
    if colour not in COLOURS:
        raise ValueError(f"colour: expected blue or green, found {colour!r}")
    write_atomically(os.path.join(live_dir, app), colour + "\n")


def write_atomically(path: str, content: str, mode: int = 0o644) -> None:
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".webstack-", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def env_errors(env: Mapping[str, Any] | None) -> list[str]:
    """Why ``env`` cannot go into an env file, naming the variables (never their values)."""
    errors = []
    for name, value in (env or {}).items():
        text = str(value)
        if not ENV_NAME.match(str(name)):
            errors.append(f"env name {str(name)!r} must have no '=', no space and not start with '#'")
        elif "\n" in text or "\r" in text or "\0" in text:
            errors.append(f"env {name}: its value holds a line break or NUL, which an env file cannot carry")
        elif text != text.strip():
            errors.append(f"env {name}: its value starts or ends with a space, which an env file would lose")
    return errors


def container_env(env: Mapping[str, Any] | None, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The environment of a colour's container: the app's ``env`` as text, then ``extra`` (colour, port)."""
    merged = {str(k): str(v) for k, v in (env or {}).items()}
    merged.update({str(k): str(v) for k, v in (extra or {}).items()})
    errors = env_errors(merged)
    if errors:
        raise ValueError("; ".join(errors))
    return merged


def env_file_text(env: Mapping[str, str]) -> str:
    """``env`` as the env file Docker reads (NAME=VALUE lines, sorted)."""
    errors = env_errors(env)
    if errors:
        raise ValueError("; ".join(errors))
    lines = [f"{name}={value}" for name, value in sorted((str(k), str(v)) for k, v in env.items())]
    return "# Environment of a blue/green colour (webstack.deploy.bluegreen): root only.\n" + "".join(
        line + "\n" for line in lines
    )


def redact(text: Any, env: Mapping[str, Any] | None) -> str:
    """``text`` with every value of ``env`` (of REDACT_MIN_LENGTH characters or more) replaced by REDACTED."""
    out = str(text)
    values = {str(v) for v in (env or {}).values() if len(str(v)) >= REDACT_MIN_LENGTH}
    for value in sorted(values, key=len, reverse=True):
        out = out.replace(value, REDACTED)
    return out
