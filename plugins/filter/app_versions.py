# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The versions of a platform's apps on an Auto Scaling colour group: its tags ``AppVersion:<app>``.

One spelling from inventory to instance: ``webstack_apps[].version`` in the inventory, the group's tag
``AppVersion:<app>`` (propagated to its instances, read at boot), ``versions`` in the release record."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ansible.errors import AnsibleFilterError

PREFIX = "AppVersion:"


def _tag_dict(tags: Any) -> dict[str, str]:
    """Tags as {key: value}, from a dict or a list of {key, value} / {Key, Value} (AWS and amazon.aws shapes)."""
    if tags is None:
        return {}
    if isinstance(tags, Mapping):
        return {str(k): str(v) for k, v in tags.items()}
    if isinstance(tags, Sequence) and not isinstance(tags, (str, bytes)):
        out = {}
        for tag in tags:
            if not isinstance(tag, Mapping):
                raise AnsibleFilterError(f"expected tags as {{key, value}} items, found {tag!r}")
            key = tag.get("key", tag.get("Key"))
            value = tag.get("value", tag.get("Value", ""))
            if key is None:
                raise AnsibleFilterError(f"a tag without a key: {dict(tag)!r}")
            out[str(key)] = "" if value is None else str(value)
        return out
    raise AnsibleFilterError(f"expected tags (a dict or a list of {{key, value}}), found {type(tags).__name__}")


def app_versions(tags: Any) -> dict[str, str]:
    """{app: version} of the tags ``AppVersion:<app>``, sorted by app; other tags are ignored."""
    found = {k[len(PREFIX) :]: v for k, v in _tag_dict(tags).items() if k.startswith(PREFIX) and len(k) > len(PREFIX)}
    return dict(sorted(found.items()))


def app_version_tags(versions: Any) -> dict[str, str]:
    """The tags ``{AppVersion:<app>: version}`` of {app: version}."""
    if not isinstance(versions, Mapping):
        raise AnsibleFilterError(f"expected {{app: version}}, found {type(versions).__name__}")
    return {f"{PREFIX}{app}": str(version) for app, version in sorted(versions.items())}


def app_versions_differ(versions: Any, other: Any) -> list[str]:
    """The apps (sorted) whose version differs between two {app: version} maps; an app missing from one
    of them differs unless both lack it."""
    if not isinstance(versions, Mapping) or not isinstance(other, Mapping):
        raise AnsibleFilterError("expected two {app: version} maps")
    apps = set(versions) | set(other)
    return sorted(a for a in apps if str(versions.get(a, "")) != str(other.get(a, "")))


def app_rollback_refusal(state: Any, app: str, apps: Any = ()) -> str:
    """Why a rollback of ``app`` on an Auto Scaling fleet must not swap to the previous colour, or ``""``.

    ``state`` is the release record (SSM): a swap back moves every app whose version differs between its
    ``versions`` and ``previous_versions``, so it is refused unless ``app`` is the only one. ``app`` empty
    (a one-app platform): no refusal. ``apps``: the platform's app names, empty when unknown."""
    if not app:
        return ""
    apps = list(apps or [])
    if apps and app not in apps:
        return f"app (release_aws_app): {app} is not an app of this platform (one of {', '.join(apps)})"
    state = state if isinstance(state, Mapping) else {}
    differ = app_versions_differ(state.get("versions") or {}, state.get("previous_versions") or {})
    if not set(differ) - {app}:
        return ""
    return (
        f"app (release_aws_app): the previous colour ({state.get('previous_colour', '?')}) differs from the live one "
        f"in {', '.join(differ)}, not in {app} alone (the last {state.get('event', 'release')} was of "
        f"{state.get('app', '?')}): a rollback of {app} would move those too. Release {app} at the version wanted "
        "with playbooks/deploy.yml instead"
    )


class FilterModule:
    def filters(self):
        return {
            "app_versions": app_versions,
            "app_version_tags": app_version_tags,
            "app_versions_differ": app_versions_differ,
            "app_rollback_refusal": app_rollback_refusal,
        }
