# Copyright: webstack.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find values that an inventory still holds at their placeholder.

A placeholder is a value that looks like data but stands for "fill this in": what the example
inventories ship and what copying from documentation leaves behind. Recognised:

* nothing at all: undefined, ``None``, an empty string or an empty list;
* a marker word: ``CHANGE_ME``/``CHANGEME``, ``REPLACE_ME``, ``PLACEHOLDER``, ``TODO``, ``FIXME``,
  ``XXX`` or a ``<fill-in>`` in angle brackets (any case, ``-`` or ``_``);
* an AWS documentation account ID (``123456789012``, ``111122223333``, ``444455556666``,
  ``000000000000``) anywhere in the value: ARNs, ECR image URIs;
* an AWS resource ID or UUID made of zeros only (``ami-00000000000000000``,
  ``certificate/00000000-0000-0000-0000-000000000000``);
* a name under a domain reserved for documentation (RFC 2606/6761): ``example.com``,
  ``example.net``, ``example.org``, ``*.example``, ``*.invalid``.
"""

from __future__ import annotations

import re
from typing import Any

DOC_ACCOUNT_IDS = ("123456789012", "111122223333", "444455556666", "000000000000")
_MARKER = re.compile(r"change[-_]?me|replace[-_]?me|placeholder|\btodo\b|\bfixme\b|\bxxx+\b|<[^<>]+>", re.IGNORECASE)
_ACCOUNT = re.compile(r"(?<![0-9])(" + "|".join(DOC_ACCOUNT_IDS) + r")(?![0-9])")
_ZERO_ID = re.compile(r"(?<![0-9a-z])[a-z]+-0{8,}(?![0-9a-z])", re.IGNORECASE)
_ZERO_UUID = re.compile(r"0{8}-0{4}-0{4}-0{4}-0{12}")
_DOC_DOMAIN = re.compile(r"(^|[@./])(example\.(com|net|org)|[a-z0-9-]+\.example|[a-z0-9-]+\.invalid)$", re.IGNORECASE)


def placeholder_reason(value: Any) -> str | None:
    """Why ``value`` is a placeholder, or None when it looks like a real value."""
    if value is None or (isinstance(value, (str, list, tuple, dict)) and len(value) == 0):
        return "it is empty"
    if isinstance(value, (list, tuple)):
        for item in value:
            reason = placeholder_reason(item)
            if reason:
                return f"'{item}': {reason}"
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            reason = placeholder_reason(item)
            if reason:
                return f"{key}: {reason}"
        return None
    text = str(value).strip()
    if (match := _MARKER.search(text)) is not None:
        return f"it holds the marker '{match.group(0)}'"
    if (match := _ACCOUNT.search(text)) is not None:
        return f"{match.group(1)} is an AWS documentation account ID"
    if _ZERO_UUID.search(text) or _ZERO_ID.search(text):
        return "its ID is all zeros"
    if _DOC_DOMAIN.search(text):
        return "it names a domain reserved for documentation"
    return None


def placeholders(values: dict[str, Any]) -> list[dict[str, str]]:
    """``[{var, value, reason}]`` for every entry of ``{variable name: value}`` still at a placeholder.

    In input order; ``msg`` is a sentence naming the variable, ready for ``fail``/``assert``.
    """
    if not isinstance(values, dict):
        raise TypeError(f"placeholders expects a dict of variable name to value, found {type(values).__name__}")
    found = []
    for name, value in values.items():
        reason = placeholder_reason(value)
        if reason:
            shown = "" if value is None else str(value)
            found.append(
                {
                    "var": str(name),
                    "value": shown,
                    "reason": reason,
                    "msg": f"{name} is still a placeholder ('{shown}': {reason}); set the real value in the inventory",
                }
            )
    return found


class FilterModule:
    """webstack.deploy placeholder filters."""

    def filters(self) -> dict[str, Any]:
        return {"placeholders": placeholders}
