"""Deadline-bounded polling, on a fake clock."""

from __future__ import annotations

from ansible_collections.webstack.deploy.plugins.module_utils.waiting import poll_until, watch


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def test_poll_until_returns_as_soon_as_done():
    clock, values = Clock(), iter([0, 1, 2, 3])
    ok, last = poll_until(
        lambda: next(values), lambda v: v >= 2, timeout=60, interval=5, sleep=clock.sleep, clock=clock
    )
    assert ok and last == 2
    assert clock.sleeps == [5, 5]


def test_poll_until_gives_up_at_the_deadline_after_a_last_look():
    clock, calls = Clock(), []
    ok, last = poll_until(
        lambda: calls.append(clock.now) or len(calls),
        lambda v: False,
        timeout=12,
        interval=5,
        sleep=clock.sleep,
        clock=clock,
    )
    assert not ok and last == 4
    assert calls == [0, 5, 10, 12]  # the last sleep is cut to the deadline


def test_poll_until_zero_timeout_looks_once():
    clock = Clock()
    ok = poll_until(lambda: 0, lambda v: False, timeout=0, sleep=clock.sleep, clock=clock)[0]
    assert not ok and clock.sleeps == []


def test_watch_quiet_for_the_whole_duration():
    clock, probes = Clock(), []
    assert watch(lambda: probes.append(clock.now), duration=10, interval=4, sleep=clock.sleep, clock=clock) is None
    assert probes == [0, 4, 8, 10]


def test_watch_stops_at_the_first_problem():
    clock = Clock()
    problems = iter([None, None, "alarm 5xx in ALARM"])
    assert (
        watch(lambda: next(problems), duration=300, interval=5, sleep=clock.sleep, clock=clock) == "alarm 5xx in ALARM"
    )
    assert clock.now == 10


def test_watch_zero_duration_probes_once():
    clock, probes = Clock(), []
    watch(lambda: probes.append(1), duration=0, sleep=clock.sleep, clock=clock)
    assert probes == [1]
