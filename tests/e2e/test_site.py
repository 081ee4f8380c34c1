"""site.yml on the local fleet: every group converged, the platform served, a second run changes nothing."""

from __future__ import annotations

import json
import ssl
import urllib.request

import pytest

APP_HOSTS = ["local-app1", "local-app2"]
ALL_HOSTS = [*APP_HOSTS, "local-data1", "local-logs1"]


def get(url: str, host_header: str) -> tuple[int, bytes]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the chain is checked by the nginx scenario (sslyze); here: what answers
    request = urllib.request.Request(url, headers={"Host": host_header})
    with urllib.request.urlopen(request, timeout=10, context=context) as response:
        return response.status, response.read()


def test_first_converge_reached_every_host(fleet):
    if fleet.converge is None:
        pytest.skip("reusing a fleet converged earlier")
    assert set(ALL_HOSTS) <= set(fleet.converge.recap), fleet.converge.recap
    assert not any(r["failed"] or r["unreachable"] for r in fleet.converge.recap.values())


@pytest.mark.parametrize("host", APP_HOSTS)
def test_platform_answers_over_tls_on_every_app_host(fleet, host):
    status, body = get(f"https://127.0.0.1:{fleet.port(host, 443)}/health", "sample.webstack.test")
    assert status == 200
    health = json.loads(body)
    assert health["status"] == "ok", health
    # The API reaches its Redis (the data service the platform declares).
    assert health["redis"] == "ok", health
    status, body = get(f"https://127.0.0.1:{fleet.port(host, 443)}/", "sample.webstack.test")
    assert status == 200
    assert b"<html" in body.lower()


def test_firewall_is_active_on_every_host(fleet):
    for host in ALL_HOSTS:
        out = fleet.exec(host, "ufw", "status").stdout
        assert "Status: active" in out, (host, out)


def test_second_converge_changes_nothing(fleet):
    run = fleet.play("site.yml")
    first = f"{fleet.converge.seconds:.0f}s" if fleet.converge else "n/a"
    print(f"site.yml: first converge {first}, second {run.seconds:.0f}s")
    assert run.rc == 0, run.output[-4000:]
    assert run.changed == {}, run.output[-6000:]
