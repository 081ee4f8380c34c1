#!/usr/bin/env python3
"""Count the requests a blue/green release or rollback drops.

Keep-alive HTTPS load (GETs and POSTs) through nginx while a command runs -
a release, a rollback, a restart of the Docker daemon, or for comparison a
plain `docker compose up -d` recreate of the same service - and print
requests sent, failed (non-2xx or connection error), p50/p99 latency and,
when a version is expected, the time from the command's start until every
response comes from that version.

  zero_downtime.py load --url https://127.0.0.1:27443 --host sample.webstack.test \\
      --expect-version v2 -- ansible-playbook playbooks/deploy.yml -e app=sample-api -e version=v2
  zero_downtime.py suite            # release, rollback and compose baseline on the
                                    # molecule bluegreen instance (see bench/README.md)
  zero_downtime.py fleet --app sample-api
                                    # rollback.yml -e app=sample-api on the local fleet
                                    # ($WEBSTACK_FLEET_PREFIX/_PORT_OFFSET), load on every
                                    # app host, with client retries and strict
  zero_downtime.py restart --no-retry --restarts 3
                                    # `systemctl restart docker` on that instance, 3 times

Bounded: at most --max-requests requests and --max-seconds seconds per run.
Standard library only.
"""

from __future__ import annotations

import argparse
import glob
import http.client
import json
import os
import select
import shlex
import ssl
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
# The kinds of request each worker cycles through: every answer names the
# version that served it (GET /api/items does not, and grows with the POSTs).
CYCLE = (("GET", "/api/version"), ("POST", "/api/items"), ("GET", "/health"), ("GET", "/api/version"))


@dataclass
class Sample:
    started: float  # monotonic seconds
    latency: float  # seconds
    method: str
    path: str
    status: int | None  # None: connection error
    version: str | None
    error: str | None = None
    retried: bool = False  # a reused keep-alive connection was closed first


@dataclass
class Result:
    samples: list[Sample] = field(default_factory=list)
    action_start: float | None = None
    action_end: float | None = None
    action_rc: int | None = None
    action_output: str = ""
    connections: int = 0

    def failed(self) -> list[Sample]:
        return [s for s in self.samples if s.status is None or not 200 <= s.status < 300]

    def failed_window(self) -> float:
        """Seconds from the start of the first failed request to the end of the last (0 without failures)."""
        failed = self.failed()
        if not failed:
            return 0.0
        return round(max(s.started + s.latency for s in failed) - min(s.started for s in failed), 2)

    def summary(self, expect_version: str | None) -> dict:
        latencies = sorted(s.latency for s in self.samples if s.status is not None)
        failed = self.failed()
        out = {
            "sent": len(self.samples),
            "failed": len(failed),
            "failed_by_kind": _count(f"{s.status}" if s.status is not None else s.error or "error" for s in failed),
            "failed_window_s": self.failed_window(),
            "keepalive_retries": sum(1 for s in self.samples if s.retried),
            "connections_opened": self.connections,
            "p50_ms": round(_percentile(latencies, 50) * 1000, 1) if latencies else None,
            "p99_ms": round(_percentile(latencies, 99) * 1000, 1) if latencies else None,
            "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
            "versions": _count(s.version or "-" for s in self.samples if s.status is not None),
            "action_seconds": round(self.action_end - self.action_start, 1)
            if self.action_start is not None and self.action_end is not None
            else None,
            "action_rc": self.action_rc,
        }
        if expect_version and self.action_start is not None:
            out["first_seconds"] = self.first_seconds(expect_version)
            out["switch_seconds"] = self.switch_seconds(expect_version)
        return out

    def first_seconds(self, version: str) -> float | None:
        """From the action's start until the first answer from `version` (to the end of that answer)."""
        ends = [
            s.started + s.latency
            for s in self.samples
            if s.started >= self.action_start and s.status is not None and s.version == version
        ]
        return round(min(ends) - self.action_start, 2) if ends else None

    def switch_seconds(self, version: str) -> float | None:
        """From the action's start until every later answer came from `version`."""
        after = sorted(
            (s for s in self.samples if s.started >= self.action_start and s.status is not None),
            key=lambda s: s.started,
        )
        if not after or after[-1].version != version:
            return None
        last_other = max((s.started + s.latency for s in after if s.version != version), default=self.action_start)
        return round(last_other - self.action_start, 2)


def _count(items) -> dict:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return dict(sorted(counts.items()))


def _percentile(sorted_values: list[float], pct: float) -> float:
    if len(sorted_values) == 1:
        return sorted_values[0]
    return (
        statistics.quantiles(sorted_values, n=100, method="inclusive")[int(pct) - 1] if pct < 100 else sorted_values[-1]
    )


class NamedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address, asking for the site by name (SNI) like a browser."""

    def __init__(self, host: str, port: int, server_name: str, **kwargs) -> None:
        super().__init__(host, port, **kwargs)
        self.server_name = server_name

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_name)  # type: ignore[attr-defined]


class Worker(threading.Thread):
    def __init__(self, index: int, load: Load) -> None:
        super().__init__(name=f"load-{index}", daemon=True)
        self.index = index
        self.load = load
        self.conn: http.client.HTTPConnection | None = None
        self.used = 0  # requests sent on the current connection

    def connect(self) -> http.client.HTTPConnection:
        url = self.load.url
        if url.scheme == "https":
            context = ssl.create_default_context(cafile=self.load.cafile)
            if not self.load.cafile:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            conn: http.client.HTTPConnection = NamedHTTPSConnection(
                url.hostname or "127.0.0.1", url.port or 443, self.load.host, timeout=10, context=context
            )
        else:
            conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=10)
        with self.load.lock:
            self.load.result.connections += 1
        self.used = 0
        return conn

    def dropped(self) -> bool:
        """Whether the server closed the idle connection (what urllib3 checks before reuse)."""
        sock = self.conn.sock if self.conn is not None else None
        if sock is None:
            return True
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable)

    def once(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes, bool]:
        """Send one request; returns status, body and whether the connection closes."""
        if self.conn is not None and self.used > 0 and self.dropped():
            self.close()
        if self.conn is None:
            self.conn = self.connect()
        headers = {"Host": self.load.host}
        if body is not None:
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=body, headers=headers)
        self.used += 1
        response = self.conn.getresponse()
        data = response.read()
        return response.status, data, response.will_close

    def run(self) -> None:
        n = 0
        while not self.load.should_stop():
            method, path = CYCLE[(n + self.index) % len(CYCLE)]
            path = self.load.prefix + path
            n += 1
            body = json.dumps({"name": f"bench {self.index}-{n}"}).encode() if method == "POST" else None
            started = time.monotonic()
            sample = Sample(started, 0.0, method, path, None, None)
            for attempt in (1, 2):
                reused = self.conn is not None and self.used > 0
                try:
                    status, data, closes = self.once(method, path, body)
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError) as err:
                    self.close()
                    # The server closed an idle keep-alive connection as the
                    # request went out (nginx's old workers do that on reload).
                    # The request never reached an app: clients (browsers,
                    # curl) send it again on a new connection, once.
                    if reused and attempt == 1 and self.load.retry_stale:
                        sample.retried = True
                        continue
                    sample.error = type(err).__name__
                    break
                except (OSError, http.client.HTTPException) as err:
                    self.close()
                    sample.error = type(err).__name__
                    break
                sample.status = status
                try:
                    sample.version = json.loads(data).get("version")
                except (ValueError, AttributeError):
                    sample.version = None
                if closes:
                    self.close()
                break
            sample.latency = time.monotonic() - started
            self.load.record(sample)
            if self.load.pause:
                time.sleep(self.load.pause)
        self.close()

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Load:
    """N keep-alive workers against one site until stopped or a bound is hit."""

    def __init__(
        self,
        url: str,
        host: str,
        concurrency: int = 8,
        max_requests: int = 20000,
        max_seconds: float = 120.0,
        pause: float = 0.0,
        cafile: str | None = None,
        retry_stale: bool = True,
        prefix: str = "",
    ) -> None:
        self.url = urlsplit(url)
        # Where nginx serves the app (e.g. /orders): put before every path of the cycle.
        self.prefix = prefix.rstrip("/")
        self.host = host or (self.url.hostname or "")
        self.concurrency = concurrency
        self.max_requests = max_requests
        self.max_seconds = max_seconds
        self.pause = pause
        self.cafile = cafile
        self.retry_stale = retry_stale
        self.lock = threading.Lock()
        self.result = Result()
        self.stopped = threading.Event()
        self.started = 0.0
        self.workers = [Worker(i, self) for i in range(concurrency)]

    def record(self, sample: Sample) -> None:
        with self.lock:
            self.result.samples.append(sample)

    def should_stop(self) -> bool:
        return (
            self.stopped.is_set()
            or len(self.result.samples) >= self.max_requests
            or time.monotonic() - self.started > self.max_seconds
        )

    def __enter__(self) -> Load:
        self.started = time.monotonic()
        for worker in self.workers:
            worker.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        for worker in self.workers:
            worker.join(timeout=15)

    def during(self, command: list[str], warmup: float = 2.0, settle: float = 3.0) -> Result:
        """Run `command` under load: warm-up, the command, a settling time."""
        with self:
            time.sleep(warmup)
            self.result.action_start = time.monotonic()
            proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
            self.result.action_end = time.monotonic()
            self.result.action_rc = proc.returncode
            self.result.action_output = proc.stdout + proc.stderr
            time.sleep(settle)
        return self.result


def print_report(title: str, summary: dict) -> None:
    print(f"\n== {title}")
    width = max(len(k) for k in summary)
    for key, value in summary.items():
        print(f"  {key:<{width}}  {value}")


# --- the suite on the molecule bluegreen instance ------------------------------------------


def molecule_inventory(scenario: str) -> str:
    found = sorted(glob.glob(os.path.expanduser(f"~/.ansible/tmp/molecule.*.{scenario}/inventory")))
    if not found:
        sys.exit(f"no molecule inventory for scenario {scenario}: run `molecule converge -s {scenario}` first")
    return found[0]


def on_host(container: str, script: str) -> str:
    proc = subprocess.run(["docker", "exec", "-i", container, "bash", "-euc", script], capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"on {container}: {script!r} failed: {proc.stderr.strip()}")
    return proc.stdout


def live_state(container: str, app: str) -> dict:
    return json.loads(on_host(container, f"cat /var/lib/webstack/releases/{app}.json"))


BASELINE_COMPOSE = """\
name: zdbaseline
services:
  api:
    image: webstack/sample-api:${TAG}
    ports: ["127.0.0.1:${PORT}:5000"]
    environment: {REDIS_URL: "redis://redis:6379/0", COLOR: compose, LOG_DIR: /tmp}
    networks: [webstack]
    stop_grace_period: 30s
networks:
  webstack: {external: true}
"""


def load_settings(args: argparse.Namespace) -> dict:
    """The load generator's settings from the command line."""
    return {
        "url": args.url,
        "host": args.host,
        "concurrency": args.concurrency,
        "max_requests": args.max_requests,
        "max_seconds": args.max_seconds,
        "pause": args.pause,
        "retry_stale": not args.no_retry,
    }


def suite(args: argparse.Namespace) -> int:
    inventory = args.inventory or molecule_inventory(args.scenario)
    # Molecule names its instances <run id>-<scenario>-<platform> (.config/molecule/config.yml).
    container = args.container or f"{os.environ.get('WEBSTACK_RUN_ID') or 'molecule'}-{args.scenario}-dockerhost"
    env_playbook = ["ansible-playbook", "-i", inventory]
    results: dict[str, dict] = {}
    load_kwargs = load_settings(args)

    start = live_state(container, args.app)
    versions = args.versions.split(",")
    # Release the version that is not live, so every run releases something.
    release_to = versions[1] if start["version"] == versions[0] else versions[0]
    back_to = start["version"]
    print(f"live: {start['version']} on {start['color']}; release {release_to}, then roll back to {back_to}")

    release = Load(**load_kwargs).during(
        [*env_playbook, "playbooks/deploy.yml", "-e", f"app={args.app}", "-e", f"version={release_to}"]
    )
    results["release"] = release.summary(release_to)
    print_report(f"blue/green release {back_to} -> {release_to}", results["release"])

    rollback = Load(**load_kwargs).during([*env_playbook, "playbooks/rollback.yml", "-e", f"app={args.app}"])
    results["rollback"] = rollback.summary(back_to)
    print_report(f"rollback {release_to} -> {back_to} (previous colour warm)", results["rollback"])

    # Baseline: the same service run by plain compose on the idle colour's
    # port (its blue/green container stopped for the while), nginx pointed
    # at it, and recreated on a new version.
    state = live_state(container, args.app)
    idle = state["previous"]
    port, live_file = idle["port"], f"/etc/nginx/webstack/live/{args.app}"
    on_host(container, f"docker stop {args.app}-{idle['colour']} >/dev/null")
    on_host(
        container,
        f"mkdir -p /opt/zdbaseline && cat > /opt/zdbaseline/compose.yaml <<'EOF'\n{BASELINE_COMPOSE}EOF\n"
        f"cd /opt/zdbaseline && TAG={back_to} PORT={port} docker compose up -d --wait --quiet-pull >/dev/null 2>&1",
    )
    on_host(container, f"echo {idle['colour']} > {live_file}.new && mv {live_file}.new {live_file}")
    try:
        baseline = Load(**load_kwargs).during(
            [
                "docker",
                "exec",
                container,
                "bash",
                "-c",
                f"cd /opt/zdbaseline && TAG={release_to} PORT={port} docker compose up -d --wait",
            ]
        )
        results["compose_recreate"] = baseline.summary(release_to)
        print_report(
            f"baseline: docker compose up -d, {back_to} -> {release_to} (same service, recreated)",
            results["compose_recreate"],
        )
    finally:
        on_host(container, f"echo {state['colour']} > {live_file}.new && mv {live_file}.new {live_file}")
        on_host(
            container, "cd /opt/zdbaseline && TAG=x PORT=1 docker compose down >/dev/null 2>&1; rm -rf /opt/zdbaseline"
        )

    for name, res in (("release", release), ("rollback", rollback)):
        if res.action_rc != 0:
            print(f"\n{name} playbook failed (rc {res.action_rc}):\n{res.action_output[-3000:]}", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    ok = all(results[k]["failed"] == 0 and results[k]["action_rc"] == 0 for k in ("release", "rollback"))
    return 0 if ok else 1


def restart_command(container: str, restarts: int = 1, gap: float = 5.0) -> list[str]:
    """`systemctl restart docker` in a Docker host container, `restarts` times, `gap` seconds apart."""
    script = f"for i in $(seq 1 {int(restarts)}); do systemctl restart docker; sleep {float(gap)}; done"
    return ["docker", "exec", container, "bash", "-euc", script]


def engine_settings(container: str) -> str:
    """live-restore and userland-proxy as daemon.json on the host sets them (Docker's defaults otherwise)."""
    config = json.loads(on_host(container, "cat /etc/docker/daemon.json 2>/dev/null || echo '{}'") or "{}")
    proxies = on_host(container, "pgrep -c -x docker-proxy || true").strip() or "0"
    return (
        f"live-restore {str(config.get('live-restore', False)).lower()}, "
        f"userland-proxy {str(config.get('userland-proxy', True)).lower()} ({proxies} docker-proxy processes)"
    )


def restart(args: argparse.Namespace) -> int:
    """The Docker daemon of the molecule instance restarted under load: what nginx's clients see."""
    container = args.container or f"{os.environ.get('WEBSTACK_RUN_ID') or 'molecule'}-{args.scenario}-dockerhost"
    settings = engine_settings(container)
    load = Load(**load_settings(args))
    result = load.during(restart_command(container, args.restarts, args.gap), warmup=args.warmup, settle=args.settle)
    summary = result.summary(None)
    print_report(f"systemctl restart docker x{args.restarts} on {container} ({settings})", summary)
    strict = "strict: no client retry" if args.no_retry else "a request on a closed keep-alive connection sent again"
    print(
        f"\nDAEMON RESTART: {summary['failed']} of {summary['sent']} requests failed ({strict}; "
        f"failures over {summary['failed_window_s']} s; load average {os.getloadavg()[0]:.1f})"
    )
    if args.json:
        Path(args.json).write_text(json.dumps({"settings": settings, **summary}, indent=2) + "\n")
    if result.action_rc != 0:
        print(result.action_output[-3000:], file=sys.stderr)
    return 0 if summary["failed"] == 0 and result.action_rc == 0 else 1


# --- rollback.yml on the local fleet -------------------------------------------------------

# HTTPS ports the local inventory publishes for the app hosts, before the fleet's port offset
# (inventories/local/hosts.yml).
FLEET_HTTPS_PORTS = {"local-app1": 8443, "local-app2": 9443}


def during_all(loads: list[Load], command: list[str], env: dict, warmup: float, settle: float) -> None:
    """Run `command` once while every load of `loads` runs (one per host); each result gets its times."""
    for load in loads:
        load.__enter__()
    try:
        time.sleep(warmup)
        start = time.monotonic()
        proc = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)
        end = time.monotonic()
        time.sleep(settle)
    finally:
        for load in loads:
            load.__exit__(None, None, None)
    for load in loads:
        load.result.action_start, load.result.action_end = start, end
        load.result.action_rc, load.result.action_output = proc.returncode, proc.stdout + proc.stderr


def fleet(args: argparse.Namespace) -> int:
    """rollback.yml -e app=<app> on the local fleet, as operators run it, under load on every app host."""
    prefix = args.prefix if args.prefix is not None else os.environ.get("WEBSTACK_FLEET_PREFIX", "")
    offset = args.offset if args.offset is not None else int(os.environ.get("WEBSTACK_FLEET_PORT_OFFSET") or 0)
    env = dict(
        os.environ,
        WEBSTACK_FLEET_PREFIX=prefix,
        WEBSTACK_FLEET_PORT_OFFSET=str(offset),
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
    )
    hosts = args.hosts.split(",")
    playbook = ["ansible-playbook", "-i", args.inventory]
    versions = args.versions.split(",")
    results: dict[str, dict] = {}
    ok = True
    for mode in args.modes.split(","):
        states = {h: live_state(prefix + h, args.app) for h in hosts}
        warm = all(s.get("event") == "release" and s.get("previous") for s in states.values())
        if not warm or len({s["version"] for s in states.values()}) != 1:
            # A release first (not under load), so the rollback has a warm previous colour to go back to.
            live = states[hosts[0]]["version"]
            release_to = versions[1] if live == versions[0] else versions[0]
            print(f"release {args.app} {release_to} first (live: {live}), not measured")
            proc = subprocess.run(
                [*playbook, "playbooks/deploy.yml", "-e", f"app={args.app}", "-e", f"version={release_to}"],
                capture_output=True,
                text=True,
                cwd=ROOT,
                env=env,
            )
            if proc.returncode != 0:
                sys.exit(f"deploy.yml failed (rc {proc.returncode}):\n{(proc.stdout + proc.stderr)[-3000:]}")
            states = {h: live_state(prefix + h, args.app) for h in hosts}
        back_to = states[hosts[0]]["previous"]["version"]
        from_version = states[hosts[0]]["version"]
        settings = {**load_settings(args), "retry_stale": mode != "strict", "prefix": args.path_prefix}
        loads = []
        for host in hosts:
            settings["url"] = f"https://127.0.0.1:{FLEET_HTTPS_PORTS[host] + offset}"
            loads.append(Load(**settings))
        load_before = os.getloadavg()
        during_all(
            loads,
            [*playbook, "playbooks/rollback.yml", "-e", f"app={args.app}"],
            env,
            args.warmup,
            args.settle,
        )
        load_after = os.getloadavg()
        per_host = {host: load.result.summary(back_to) for host, load in zip(hosts, loads, strict=True)}
        for host, summary in per_host.items():
            print_report(f"{mode}: rollback.yml -e app={args.app}, {from_version} -> {back_to}, {host}", summary)
        firsts = [s["first_seconds"] for s in per_host.values()]
        switches = [s["switch_seconds"] for s in per_host.values()]
        total = {
            "sent": sum(s["sent"] for s in per_host.values()),
            "failed": sum(s["failed"] for s in per_host.values()),
            "keepalive_retries": sum(s["keepalive_retries"] for s in per_host.values()),
            "first_seconds_max": None if None in firsts else max(firsts),
            "every_host_seconds": None if None in switches else max(switches),
            "action_seconds": per_host[hosts[0]]["action_seconds"],
            "action_rc": per_host[hosts[0]]["action_rc"],
            "load_average": [round(x, 2) for x in (*load_before, *load_after)],
        }
        results[mode] = {"hosts": per_host, "all": total}
        strict = "strict: no client retry" if mode == "strict" else "a request on a closed connection sent again"
        print(
            f"\nROLLBACK ({mode}) {args.app} {from_version} -> {back_to} on {', '.join(hosts)}: first answer from "
            f"{back_to} {total['first_seconds_max']} s, every answer from {back_to} {total['every_host_seconds']} s "
            f"after the playbook started (slowest host); playbook {total['action_seconds']} s "
            f"(rc {total['action_rc']}); "
            f"{total['failed']} of {total['sent']} requests failed ({strict}); load average "
            f"{load_before[0]:.2f} before, {load_after[0]:.2f} after"
        )
        if args.log:
            Path(f"{args.log}.{mode}").write_text(loads[0].result.action_output)
        if total["action_rc"] != 0:
            print(loads[0].result.action_output[-3000:], file=sys.stderr)
        ok = ok and total["failed"] == 0 and total["action_rc"] == 0 and total["every_host_seconds"] is not None
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0 if ok else 1


def load_command(args: argparse.Namespace) -> int:
    if not args.command:
        sys.exit("give the command to run under load after --")
    load = Load(**load_settings(args))
    result = load.during(args.command, warmup=args.warmup, settle=args.settle)
    summary = result.summary(args.expect_version)
    print_report(" ".join(shlex.quote(c) for c in args.command), summary)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2) + "\n")
    if result.action_rc != 0:
        print(result.action_output[-3000:], file=sys.stderr)
    return 0 if summary["failed"] == 0 and result.action_rc == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        port = os.environ.get("WEBSTACK_BLUEGREEN_HTTPS_PORT", "27443")
        p.add_argument("--url", default=f"https://127.0.0.1:{port}", help="nginx (HTTPS) base URL")
        p.add_argument("--host", default="sample.webstack.test", help="site name (Host header and SNI)")
        p.add_argument("--concurrency", type=int, default=8, help="keep-alive connections")
        p.add_argument("--max-requests", type=int, default=50000, help="bound on requests per run")
        p.add_argument("--max-seconds", type=float, default=300, help="bound on seconds per run")
        p.add_argument("--pause", type=float, default=0.0, help="seconds each worker waits between requests")
        p.add_argument(
            "--no-retry",
            action="store_true",
            help="count a request on a keep-alive connection the server just closed as failed "
            "instead of sending it again once on a new connection",
        )
        p.add_argument("--json", help="also write the figures to this file")

    s = sub.add_parser("suite", help="release, rollback and compose baseline on the molecule bluegreen instance")
    common(s)
    s.add_argument("--scenario", default="bluegreen")
    s.add_argument("--inventory", help="inventory (default: the molecule scenario's)")
    s.add_argument("--container", help="Docker host container (default <run id>-<scenario>-dockerhost)")
    s.add_argument("--app", default="sample-api")
    s.add_argument("--versions", default="v1,v2", help="two good versions to go between")

    r = sub.add_parser("restart", help="restart the Docker daemon of the molecule bluegreen instance under load")
    common(r)
    r.add_argument("--scenario", default="bluegreen")
    r.add_argument("--container", help="Docker host container (default <run id>-<scenario>-dockerhost)")
    r.add_argument("--restarts", type=int, default=1, help="restarts in a row")
    r.add_argument("--gap", type=float, default=5.0, help="seconds between restarts (and after the last)")
    r.add_argument("--warmup", type=float, default=2.0)
    r.add_argument("--settle", type=float, default=3.0)

    f = sub.add_parser("fleet", help="rollback.yml -e app=<app> on the local fleet, under load on every app host")
    common(f)
    f.add_argument("--inventory", default="inventories/local")
    f.add_argument("--prefix", help="the fleet's container prefix (default $WEBSTACK_FLEET_PREFIX)")
    f.add_argument("--offset", type=int, help="the fleet's port offset (default $WEBSTACK_FLEET_PORT_OFFSET)")
    f.add_argument("--hosts", default="local-app1,local-app2", help="app hosts, each loaded through its own nginx")
    f.add_argument("--app", default="sample-api")
    f.add_argument("--path-prefix", default="", help="where nginx serves the app (orders: /orders)")
    f.add_argument("--versions", default="v1,v2", help="two good versions to go between")
    f.add_argument("--modes", default="retry,strict", help="runs, in order: retry (clients retry once), strict")
    f.add_argument("--log", help="write each run's playbook output to <log>.<mode>")
    f.add_argument("--warmup", type=float, default=2.0)
    f.add_argument("--settle", type=float, default=3.0)

    load = sub.add_parser("load", help="run one command under load")
    common(load)
    load.add_argument("--expect-version", help="version every answer should come from once the command ran")
    load.add_argument("--warmup", type=float, default=2.0)
    load.add_argument("--settle", type=float, default=3.0)
    load.add_argument("command", nargs=argparse.REMAINDER)

    args = parser.parse_args(argv)
    if args.mode == "load" and args.command and args.command[0] == "--":
        args.command = args.command[1:]
    return {"suite": suite, "restart": restart, "fleet": fleet, "load": load_command}[args.mode](args)


if __name__ == "__main__":
    sys.exit(main())
