# Copyright: webstack.deploy maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The checks every list of database users shares (Redis ACL users, MongoDB users).

``user_entries`` walks a list of user mappings once: it reports a value that
is not a list, an entry that is not a mapping, unknown keys and a malformed
name, and hands each usable entry back with the label its messages use
(``<variable> entry '<name>'``), so the caller adds only the checks of its
own engine. Messages quote names and keys, never a password.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

USER_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


@dataclass(frozen=True)
class UserEntry:
    """One mapping of the list, with what the shared checks found about it."""

    index: int
    user: Mapping[str, Any]
    name: str
    where: str  # "<variable> entry '<name or index>'": the start of every message about it
    name_ok: bool


def user_entries(users: Any, variable: str, keys: Iterable[str], shape: str, errors: list[str]) -> list[UserEntry]:
    """The mappings of ``users``; problems every engine shares are appended to ``errors``.

    ``keys`` are the keys an entry may have; ``shape`` completes "expected a
    mapping with ..." for an entry that is not a mapping.
    """
    if not isinstance(users, list):
        errors.append(f"{variable}: expected a list of users, found {type(users).__name__}.")
        return []
    allowed = frozenset(keys)
    entries: list[UserEntry] = []
    for index, user in enumerate(users):
        if not isinstance(user, Mapping):
            errors.append(f"{variable}[{index}]: expected a mapping with {shape}.")
            continue
        name = str(user.get("name", ""))
        where = f"{variable} entry '{name or index}'"
        unknown = sorted(set(user) - allowed)
        if unknown:
            errors.append(f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(allowed))}.")
        name_ok = bool(USER_NAME.match(name))
        if not name_ok:
            errors.append(f"{where}: name: expected letters, digits, '_', '.', '@' or '-', found '{name}'.")
        entries.append(UserEntry(index, user, name, where, name_ok))
    return entries
