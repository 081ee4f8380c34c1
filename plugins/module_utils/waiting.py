# Copyright: webstack.deploy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Deadline-bounded polling for conditions AWS has no waiter for (a minimum count of healthy
targets, alarms quiet for a bake time). Clock and sleep are injectable for unit tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def poll_until(
    fetch: Callable[[], T],
    done: Callable[[T], bool],
    timeout: float,
    interval: float = 5.0,
    sleep: Callable[[float], Any] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> tuple[bool, T]:
    """Call ``fetch`` until ``done`` holds for its result or ``timeout`` seconds passed.

    Returns (done, last result). ``fetch`` runs at least once, and once more at the deadline.
    """
    deadline = clock() + max(0.0, timeout)
    while True:
        value = fetch()
        if done(value):
            return True, value
        remaining = deadline - clock()
        if remaining <= 0:
            return False, value
        sleep(min(interval, remaining))


def watch(
    probe: Callable[[], str | None],
    duration: float,
    interval: float = 5.0,
    sleep: Callable[[float], Any] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> str | None:
    """Run ``probe`` every ``interval`` seconds for ``duration`` seconds (and once at the end).

    Returns the first problem ``probe`` reports (a non-empty string), or None when it stayed quiet.
    """
    deadline = clock() + max(0.0, duration)
    while True:
        problem = probe()
        if problem:
            return problem
        remaining = deadline - clock()
        if remaining <= 0:
            return None
        sleep(min(interval, remaining))
