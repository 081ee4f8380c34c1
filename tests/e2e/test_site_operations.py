"""What operators do on a converged local fleet: logs arrive at the collector, a release and a
rollback of the app under the collection's playbooks, a backup and a proven restore.

The tests share one fleet (``conftest.fleet``), after test_site.py, in file order: the release before the
rollback. Each prints the figures an operator would ask for.
"""

from __future__ import annotations

import json
import re
import ssl
import time
import urllib.request
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
APP = "sample-api"
# The platform's second app, under /orders: released and rolled back on its own.
OTHER = "orders"
SITE = "sample.webstack.test"
OTHER_RECORD = f"/var/lib/webstack/releases/{OTHER}.json"


def request(url: str, method: str = "GET", body: dict | None = None) -> tuple[int, bytes]:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    data = json.dumps(body).encode() if body is not None else None
    headers = {"Host": SITE, **({"Content-Type": "application/json"} if data else {})}
    req = urllib.request.Request(url, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=10, context=context) as response:
        return response.status, response.read()


def health(fleet, host: str) -> dict:
    return json.loads(request(f"https://127.0.0.1:{fleet.port(host, 443)}/health")[1])


def other_health(fleet, host: str) -> dict:
    return json.loads(request(f"https://127.0.0.1:{fleet.port(host, 443)}/orders/health")[1])


def other_version(fleet, host: str) -> str:
    return other_health(fleet, host)["version"]


def other_state(fleet, host: str) -> tuple[str, str, str]:
    """The other app's colour serving through nginx, its release record and its colours' containers (id,
    image, state) on a host."""
    colour = other_health(fleet, host)["color"]
    record = fleet.exec(host, "sh", "-c", f"cat {OTHER_RECORD} 2>/dev/null || true").stdout
    listing = ["docker", "ps", "-a", "--filter", f"label=webstack.app={OTHER}"]
    containers = fleet.exec(host, *listing, "--format", "{{.ID}} {{.Image}} {{.State}}").stdout
    return colour, record, "\n".join(sorted(containers.splitlines()))


def lines(fleet, host: str, path: str) -> list[dict]:
    out = fleet.exec(host, "sh", "-c", f"cat {path} 2>/dev/null || true").stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def test_app_logs_reach_the_collector_with_their_fields(fleet):
    """Every line the app writes on local-app1 is stored once at local-logs1, its fields intact."""
    written_path = f"/var/log/webstack/apps/{APP}/combined.log"
    stored_path = f"/var/log/webstack/local/local-app1/{APP}/combined.log"
    for i in range(50):
        assert request(f"https://127.0.0.1:{fleet.port('local-app1', 443)}/api/items?n={i}")[0] == 200
    # A stored line is the written one plus what the shipper adds (host, app, environment, ...);
    # compared on the fields an investigation reads. Waited for until every written line is stored
    # (a count alone would stop early when a line arrives twice).
    fields = ["timestamp", "level", "message", "color", "version"]
    written: list[dict] = []
    stored: list[dict] = []
    sent: list[str] = []
    kept: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        written = lines(fleet, "local-app1", written_path)
        stored = lines(fleet, "local-logs1", stored_path)
        sent = [json.dumps([line.get(k) for k in fields]) for line in written]
        kept = [json.dumps([line.get(k) for k in fields]) for line in stored]
        if written and set(sent) <= set(kept):
            break
        time.sleep(2)
    lost = len(set(sent) - set(kept))
    duplicated = len(kept) - len(set(kept))
    print(f"logs: written {len(written)}, stored {len(stored)}, lost {lost}, duplicated {duplicated}")
    assert len(written) >= 50
    assert lost == 0
    for line in stored[-50:]:
        assert line["host"] == "local-app1"
        assert line["app"] == APP
        assert line["environment"] == "local"
        assert line["level"] and line["message"] and line["timestamp"]
        assert line["version"] == health(fleet, "local-app1")["version"]


def test_deploy_releases_the_next_version_on_every_app_host(fleet):
    """sample-api v2 goes out; orders, so far only converged by site.yml at its inventory version, is left
    exactly as it was: same colour, same containers, same release record. On local-app2 orders has no release
    record for the while, as on a host where it was never released: a converge would release it there, a
    release of sample-api must not."""
    before = {h: health(fleet, h) for h in ("local-app1", "local-app2")}
    fleet.exec("local-app2", "mv", OTHER_RECORD, f"{OTHER_RECORD}.e2e")
    try:
        other_before = {h: other_state(fleet, h) for h in before}
        run = fleet.play("playbooks/deploy.yml", "-e", f"app={APP}", "-e", "version=v2")
        other_after = {h: other_state(fleet, h) for h in before}
    finally:
        fleet.exec("local-app2", "mv", f"{OTHER_RECORD}.e2e", OTHER_RECORD)
    print(f"deploy.yml v2: {run.seconds:.0f}s")
    assert run.rc == 0, run.output[-6000:]
    said = rf"{OTHER}\s+is\s+left\s+as\s+it\s+is:\s+this\s+release\s+moves\s+{APP}\s+only"  # lines wrap
    assert re.search(said, run.output), run.output[-6000:]
    for host, was in before.items():
        now = health(fleet, host)
        assert now["version"] == "v2", (host, now)
        assert now["color"] != was["color"], (host, was, now)
        assert other_version(fleet, host) == "v1", f"{OTHER} moved with {APP} on {host}"
        assert other_after[host] == other_before[host], f"{OTHER} was released again with {APP} on {host}"


def test_site_after_a_release_keeps_the_released_version(fleet):
    run = fleet.play("site.yml", "--tags", "app")
    assert run.rc == 0, run.output[-6000:]
    assert run.changed == {}, run.output[-6000:]
    assert health(fleet, "local-app1")["version"] == "v2"


def test_rollback_puts_the_previous_version_back_within_seconds(fleet):
    start = time.monotonic()
    run = fleet.play("playbooks/rollback.yml", "-e", f"app={APP}")
    took = time.monotonic() - start
    assert run.rc == 0, run.output[-6000:]
    for host in ("local-app1", "local-app2"):
        assert health(fleet, host)["version"] == "v1", host
    print(f"rollback.yml: {took:.1f}s for the whole playbook")
    again = fleet.play("playbooks/rollback.yml", "-e", f"app={APP}")
    assert again.rc == 0, again.output[-6000:]
    assert again.changed == {}, again.output[-6000:]


def test_the_other_app_is_released_and_rolled_back_on_its_own(fleet):
    """orders v2 goes out and comes back while sample-api keeps the version it has."""
    kept = {h: health(fleet, h) for h in ("local-app1", "local-app2")}
    run = fleet.play("playbooks/deploy.yml", "-e", f"app={OTHER}", "-e", "version=v2")
    print(f"deploy.yml {OTHER} v2: {run.seconds:.0f}s")
    assert run.rc == 0, run.output[-6000:]
    for host, was in kept.items():
        assert other_version(fleet, host) == "v2", host
        assert health(fleet, host) == was, f"{APP} moved with {OTHER} on {host}"
    run = fleet.play("playbooks/rollback.yml", "-e", f"app={OTHER}")
    print(f"rollback.yml {OTHER}: {run.seconds:.1f}s")
    assert run.rc == 0, run.output[-6000:]
    for host, was in kept.items():
        assert other_version(fleet, host) == "v1", host
        assert health(fleet, host) == was, f"{APP} moved with {OTHER} on {host}"


@pytest.mark.parametrize("job", ["cache", "appdb"])
def test_backup_then_restore_to_scratch_is_proven(fleet, job):
    if job == "cache":
        status, _ = request(
            f"https://127.0.0.1:{fleet.port('local-app1', 443)}/api/items", "POST", {"name": "before the backup"}
        )
        assert status == 201
    run = fleet.play("playbooks/backup.yml", "-e", f"backup_job={job}", "-e", "backup_tag=e2e")
    print(f"backup.yml {job}: {run.seconds:.0f}s")
    assert run.rc == 0, run.output[-6000:]
    run = fleet.play(
        "playbooks/restore.yml", "-e", "restore_host=local-data1", "-e", f"restore_job={job}", "-e", "restore_label=e2e"
    )
    print(f"restore.yml {job} (scratch, verified against the manifest): {run.seconds:.0f}s")
    assert run.rc == 0, run.output[-6000:]
    assert "verified" in run.output


def app_env_secrets(fleet) -> set[str]:
    """Secret values the apps' environment carries (REDIS_URL holds the Redis password)."""
    apps = yaml.safe_load((REPO_ROOT / "inventories/local/group_vars/app.yml").read_text())["webstack_apps"]
    local = yaml.safe_load((REPO_ROOT / "inventories/local/group_vars/local.yml").read_text())
    names = {n for app in apps for v in app.get("env", {}).values() for n in re.findall(r"{{\s*(\w+)", str(v))}
    return {str(local[n]) for n in names if n in local} & fleet.secrets


def printed(fleet, secrets: set[str]) -> dict[str, list[str]]:
    return {run: sorted(set(found) & secrets) for run, found in fleet.printed.items() if set(found) & secrets}


def test_no_secret_was_printed_by_any_run_at_vvv(fleet):
    """Every playbook above (site.yml included) ran at -vvv: none printed a secret of the inventory
    (the apps' environment aside: next test)."""
    assert fleet.secrets, "the local inventory holds no secret values: the check would prove nothing"
    assert printed(fleet, fleet.secrets - app_env_secrets(fleet)) == {}


def test_the_apps_environment_is_not_printed_at_vvv(fleet):
    """site.yml, deploy.yml and rollback.yml above ran at -vvv: the apps' env (REDIS_URL carries the Redis
    password) reaches the containers through a root-only env file, and no run printed it."""
    secrets = app_env_secrets(fleet)
    assert secrets, "the apps' environment holds no secret: nothing to check"
    # The release path ran on this fleet (the tests above, in file order): a release and a rollback.
    record = json.loads(fleet.exec("local-app1", "cat", f"/var/lib/webstack/releases/{APP}.json").stdout)
    assert {"release", "rollback"} <= {event["event"] for event in record["history"]}, record
    assert printed(fleet, secrets) == {}
    # The secret did reach the live colour, from its root-only env file.
    name = f"{APP}-{record['colour']}"
    env = fleet.exec("local-app1", "docker", "exec", name, "env").stdout
    assert any(secret in env for secret in secrets), name
    mode = fleet.exec("local-app1", "stat", "-c", "%a %U", f"/etc/webstack/bluegreen/{name}.env").stdout.split()
    assert mode == ["600", "root"], mode
