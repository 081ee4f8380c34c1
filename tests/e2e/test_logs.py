"""Log shipping on the local fleet when things go wrong: every line the sample app writes arrives
at the collector once, with its fields.

The lines come from the real sample API on local-app1: each request through nginx to a path of its
own (``/api/e2e-logs/<run>/<seq>``, answered 404) makes the app write one winston line to
``combined.log`` (shipped from the host's directory) and the same line to its standard output
(shipped from Docker's json-file log). Each case writes a bounded number of lines at a bounded
rate while it breaks one part of the pipeline, then counts the lines of its run on the host against
those stored at local-logs1 and prints sent / stored / lost / duplicated. Lost must be 0;
duplicates (a RELP session broken mid-batch, a shipper restarted after ``kill -9``) are counted and
reported. Stored lines must carry the written line's timestamp, level, message, color, version,
path and status.

The cases run on the fleet of ``conftest.fleet`` in file order; ``LOGS_E2E_OUTAGE_SECONDS`` (60)
sets how long the collector stays stopped.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import ssl
import subprocess
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

APP = "sample-api"
SITE = "sample.webstack.test"
SHIPPER = "local-app1"
COLLECTOR = "local-logs1"
ENVIRONMENT = "local"
WRITTEN_DIR = f"/var/log/webstack/apps/{APP}"
STORED_DIR = f"/var/log/webstack/{ENVIRONMENT}/{SHIPPER}"
CONTAINER_LOGS = "/var/lib/docker/containers"
TLS_DIR = "/etc/webstack/rsyslog-tls"
PLATFORM_CA = Path(__file__).resolve().parents[2] / ".pki" / ENVIRONMENT
OUTAGE_SECONDS = int(os.environ.get("LOGS_E2E_OUTAGE_SECONDS", "60"))
# How long the stored lines may take to catch up once the writer is done.
DELIVERY_SECONDS = 240
# Fields of a written line that its stored copy must carry unchanged.
COMPARED = ("timestamp", "level", "message", "color", "version", "path", "status")
# The collector's own lines that say it refused a TLS peer, and why.
REFUSAL = re.compile(r"imrelp.*authentication error '([^']*)'")


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def new_run(case: str) -> str:
    return f"e2e{uuid.uuid4().hex[:8]}-{case}"


class Writer(threading.Thread):
    """``count`` requests at ``rate`` per second to the sample API through nginx on one host,
    each to ``/api/e2e-logs/<run>/<seq>``: one winston line each, marked with the run."""

    def __init__(self, port: int, run: str, count: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.port, self.run_id, self.count, self.rate = port, run, count, rate
        self.statuses: Counter[int] = Counter()
        self.errors: list[str] = []

    def run(self) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        conn: http.client.HTTPSConnection | None = None
        start = time.monotonic()
        for seq in range(self.count):
            delay = start + seq / self.rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            try:
                if conn is None:
                    conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=10, context=context)
                conn.request("GET", f"/api/e2e-logs/{self.run_id}/{seq}", headers={"Host": SITE})
                response = conn.getresponse()
                response.read()
                self.statuses[response.status] += 1
            except (OSError, http.client.HTTPException) as err:
                self.errors.append(f"{seq}: {err!r}")
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def finish(self) -> None:
        self.join(timeout=self.count / self.rate + 120)
        assert not self.is_alive(), f"the writer of {self.run_id} did not finish"
        # Every request reached the app (a 404 of its own), so every one wrote a line.
        assert self.statuses == Counter({404: self.count}), (self.statuses, self.errors[:5])


def sh(fleet, host: str, command: str) -> str:
    return fleet.exec(host, "sh", "-c", command).stdout


def grep_run(fleet, host: str, files: str, run: str) -> list[tuple[str, dict]]:
    """(file, JSON line) of every line of ``files`` (a shell glob, gzipped or not) holding ``run``."""
    out = sh(fleet, host, f"zgrep -H -F -- '{run}' {files} 2>/dev/null || true")
    found = []
    for line in out.splitlines():
        path, _, text = line.partition(":")
        found.append((path, json.loads(text)))
    return found


@dataclass
class Stream:
    """One shipped source: how to find a run's lines where they were written and where stored."""

    name: str
    written: str  # shell glob on the shipper
    stored: str  # shell glob on the collector

    def sent(self, fleet, run: str) -> dict[tuple[str, str], dict]:
        lines = {}
        for path, line in grep_run(fleet, SHIPPER, self.written, run):
            if self.name == "containers":
                # A json-file line {"log", "stream", "time"}: the app's line is "log"; the
                # container is the directory's name.
                key = (path.split("/")[-2], json.loads(line["log"])["path"])
                lines[key] = json.loads(line["log"])
            else:
                lines[(self.name, line["path"])] = line
        return lines

    def stored_lines(self, fleet, run: str) -> list[tuple[tuple[str, str], dict]]:
        out = []
        for _, line in grep_run(fleet, COLLECTOR, self.stored, run):
            owner = line.get("stream") if self.name == "containers" else self.name
            out.append(((owner, line.get("path")), line))
        return out


COMBINED = Stream("combined.log", f"{WRITTEN_DIR}/combined.log*", f"{STORED_DIR}/{APP}/combined.log*")
CONTAINERS = Stream("containers", f"{CONTAINER_LOGS}/*/*-json.log*", f"{STORED_DIR}/containers/*.log*")


@dataclass
class Figures:
    case: str
    stream: str
    requests: int
    sent: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    mismatched: list = field(default_factory=list)
    catch_up: float = 0.0

    def __str__(self) -> str:
        return (
            f"LOGS {self.case} [{self.stream}]: requests={self.requests} sent={self.sent} stored={self.stored} "
            f"lost={self.lost} duplicated={self.duplicated} fields_mismatched={len(self.mismatched)} "
            f"caught_up_after={self.catch_up:.1f}s load={load()}"
        )


def account(fleet, case: str, run: str, requests: int, stream: Stream) -> Figures:
    """Wait until the collector holds every line of ``run`` written to ``stream`` (or the time is
    up), then count and compare them; print the figures."""
    figures = Figures(case, stream.name, requests)
    done = time.monotonic()
    deadline = done + DELIVERY_SECONDS
    while True:
        sent = stream.sent(fleet, run)
        stored = stream.stored_lines(fleet, run)
        missing = set(sent) - {key for key, _ in stored}
        if len(sent) >= requests and not missing:
            figures.catch_up = time.monotonic() - done
            time.sleep(3)  # a late duplicate still counts
            stored = stream.stored_lines(fleet, run)
            break
        if time.monotonic() > deadline:
            figures.catch_up = time.monotonic() - done
            break
        time.sleep(3)
    keys = [key for key, _ in stored]
    figures.sent, figures.stored = len(sent), len(stored)
    figures.lost = len(set(sent) - set(keys))
    figures.duplicated = len(keys) - len(set(keys))
    for key, line in stored:
        origin = sent.get(key)
        want = {k: origin.get(k) for k in COMPARED} if origin else {"written": "no such line"}
        want.update(host=SHIPPER, environment=ENVIRONMENT)
        if stream is COMBINED:
            want.update(app=APP, stream="combined")
        else:
            want.update(app="containers", output="stdout")
        got = {k: line.get(k) for k in want}
        if got != want:
            figures.mismatched.append((want, got))
    print(f"\n{figures}")
    return figures


def check(figures: Figures, expected: int) -> None:
    """Every line written is stored once at least, with its fields."""
    assert figures.sent == expected, f"{figures.case}: the app wrote {figures.sent} lines for {expected} requests"
    assert not figures.mismatched, f"{figures.case}: stored fields differ from the written: {figures.mismatched[:3]}"
    assert figures.lost == 0, f"{figures.case} [{figures.stream}]: {figures.lost} lines lost"


def write_and_count(fleet, case: str, count: int, rate: float, fault) -> str:
    """Write ``count`` lines at ``rate`` through the app while ``fault(run)`` runs, then account for
    both the winston file and the container output; returns the run."""
    run = new_run(case)
    writer = Writer(fleet.port(SHIPPER, 443), run, count, rate)
    writer.start()
    try:
        fault(run)
    finally:
        writer.finish()
    for figures in [account(fleet, case, run, count, stream) for stream in (COMBINED, CONTAINERS)]:
        check(figures, count)
    return run


def rsyslog_pid(fleet, host: str) -> str:
    return sh(fleet, host, "pidof rsyslogd || true").strip()


# --- the cases ---------------------------------------------------------------------------------


def test_collector_stopped_while_lines_are_written_then_started(fleet):
    """The collector is away for OUTAGE_SECONDS while the app writes; its shippers queue on disk."""
    rate = 10
    count = rate * (OUTAGE_SECONDS + 15)
    outage = {}

    def stop_collector(run: str) -> None:
        time.sleep(5)
        # syslog.socket would start rsyslog again at the next local message.
        sh(fleet, COLLECTOR, "systemctl stop syslog.socket rsyslog.service")
        stopped = time.monotonic()
        time.sleep(OUTAGE_SECONDS / 2)
        outage["listening"] = ":2514 " in sh(fleet, COLLECTOR, "ss -ltnH")
        outage["queued"] = sh(fleet, SHIPPER, "du -sk /var/spool/rsyslog | cut -f1").strip()
        time.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - stopped)))
        sh(fleet, COLLECTOR, "systemctl start rsyslog.service")
        outage["seconds"] = time.monotonic() - stopped

    write_and_count(fleet, "collector-stopped", count, rate, stop_collector)
    print(
        f"LOGS collector stopped {outage['seconds']:.1f} s (listening meanwhile: {outage['listening']}, "
        f"disk queue on {SHIPPER} halfway: {outage['queued']} KiB)"
    )
    assert not outage["listening"], "the collector kept listening while it was stopped"
    assert outage["seconds"] >= OUTAGE_SECONDS


def test_shipper_killed_with_kill_9_mid_stream_then_started(fleet):
    rate, count = 40, 1200
    pids = {}

    def kill_shipper(run: str) -> None:
        time.sleep(8)
        pids["before"] = rsyslog_pid(fleet, SHIPPER)
        assert pids["before"], f"no rsyslogd runs on {SHIPPER}"
        sh(fleet, SHIPPER, f"kill -9 {pids['before']}")
        time.sleep(3)
        pids["between"] = rsyslog_pid(fleet, SHIPPER)
        sh(fleet, SHIPPER, "systemctl start rsyslog.service")
        pids["after"] = rsyslog_pid(fleet, SHIPPER)

    write_and_count(fleet, "shipper-kill-9", count, rate, kill_shipper)
    print(f"LOGS rsyslogd on {SHIPPER}: pid {pids['before']} killed (-9), {pids['between'] or 'none'} 3 s later, "
          f"{pids['after']} after start")  # fmt: skip
    assert pids["after"] and pids["after"] != pids["before"]


def test_rotation_mid_stream_with_the_roles_logrotate_config(fleet):
    """logrotate renames the winston files while the app writes; every running container of the app
    (both colours after a release) reopens them, and the renamed file is handed over to imfile."""
    rate, count = 40, 1200
    rotated = {}

    def rotate(run: str) -> None:
        time.sleep(10)
        rotated["writers"] = len(sh(fleet, SHIPPER, f"docker ps --quiet --filter label=webstack.app={APP}").split())
        rotated["since"] = sh(fleet, SHIPPER, "date '+%Y-%m-%d %H:%M:%S'").strip()
        started = time.monotonic()
        sh(fleet, SHIPPER, "logrotate --force /etc/logrotate.d/webstack-apps")
        rotated["seconds"] = time.monotonic() - started

    run = write_and_count(fleet, "rotation", count, rate, rotate)
    # The run's lines are in the renamed file and in the new one: the rotation was mid-stream.
    run_files = Counter(path for path, _ in grep_run(fleet, SHIPPER, COMBINED.written, run))
    handover = sh(fleet, SHIPPER, f"journalctl -q -o cat -t webstack-log-handover --since '{rotated['since']}' || true")
    print(
        f"LOGS rotation took {rotated['seconds']:.1f} s with {rotated['writers']} running containers of {APP}; "
        f"the run's lines by file: {dict(run_files)}; hand-over: {handover.strip() or 'imfile had read every line'}"
    )
    assert f"{WRITTEN_DIR}/combined.log" in run_files and f"{WRITTEN_DIR}/combined.log.1" in run_files


# --- who may send ------------------------------------------------------------------------------


def put(fleet, host: str, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` on a host (docker cp cannot write to its tmpfs /tmp)."""
    subprocess.run(
        ["docker", "exec", "-i", fleet.container(host), "sh", "-c", f"umask 077 && cat > {path}"],
        input=data,
        check=True,
        capture_output=True,
    )


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def client_certificate(client: str, directory: Path) -> tuple[Path, Path] | None:
    """Key and certificate of a client that claims a shipper's name (or, signed by the platform CA,
    a name the collector does not permit); None for the shipper's own platform certificate."""
    key, cert, csr = directory / "client.key", directory / "client.crt", directory / "client.csr"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    name = "intruder" if client == "platform-ca-unpermitted-name" else SHIPPER
    subject = ["-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}"]
    if client == "platform-certificate":
        return None
    if client == "self-signed":
        openssl("req", "-x509", *ec, "-keyout", str(key), "-out", str(cert), "-days", "2", *subject)
        return key, cert
    if client == "another-ca":
        ca_key, ca_cert = directory / "other-ca.key", directory / "other-ca.crt"
        openssl("req", "-x509", *ec, "-keyout", str(ca_key), "-out", str(ca_cert), "-days", "2",
                "-subj", "/CN=another CA", "-addext", "basicConstraints=critical,CA:TRUE")  # fmt: skip
    else:
        ca_key, ca_cert = PLATFORM_CA / "ca.key", PLATFORM_CA / "ca.crt"
    openssl("req", *ec, "-keyout", str(key), "-out", str(csr), *subject)
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial",
            "-out", str(cert), "-days", "2", "-copy_extensions", "copy")  # fmt: skip
    return key, cert


def client_config(work: str, run: str) -> str:
    """A second rsyslogd on the shipper that sends every line of <work>/in.log to the collector
    with the certificate in <work>, stored (when accepted) under app e2e-foreign-client."""
    return f"""
global(workDirectory="{work}")
module(load="imfile" mode="polling" pollingInterval="1")
module(load="mmjsonparse")
module(load="omrelp")
template(name="relp" type="string" string="<14>1 - {SHIPPER} webstack - - - @cee:%$!all-json-plain%")
ruleset(name="out") {{
  action(type="mmjsonparse" cookie="")
  set $!host = "{SHIPPER}";
  set $!environment = "{ENVIRONMENT}";
  set $!app = "e2e-foreign-client";
  set $!stream = "{run}";
  action(type="omrelp" target="{COLLECTOR}" port="2514" template="relp" tls="on"
         tls.caCert="{work}/ca.crt" tls.myCert="{work}/client.crt" tls.myPrivKey="{work}/client.key"
         tls.authMode="name" tls.permittedPeer=["{COLLECTOR}"]
         action.resumeRetryCount="-1" action.resumeInterval="1")
}}
input(type="imfile" file="{work}/in.log" tag="client" ruleset="out")
"""


@pytest.mark.parametrize(
    "client", ["platform-certificate", "self-signed", "another-ca", "platform-ca-unpermitted-name"]
)
def test_a_client_without_a_permitted_platform_certificate_is_refused(fleet, client, tmp_path):
    """From a host the firewall lets in, only the platform CA's certificate of a permitted name
    gets lines stored; the first case (the shipper's own certificate) shows the client works."""
    run = new_run(client)
    work = f"/tmp/e2e-logs-client-{client}"
    certificate = client_certificate(client, tmp_path)
    sh(fleet, SHIPPER, f"rm -rf {work} && mkdir -p {work} && cp {TLS_DIR}/ca.crt {work}/")
    if certificate is None:
        sh(fleet, SHIPPER, f"cp {TLS_DIR}/host.crt {work}/client.crt && cp {TLS_DIR}/host.key {work}/client.key")
    else:
        for source, name in zip(certificate, ("client.key", "client.crt"), strict=True):
            put(fleet, SHIPPER, f"{work}/{name}", source.read_bytes())
    put(fleet, SHIPPER, f"{work}/rsyslog.conf", client_config(work, run).encode())
    syslog_before = int(sh(fleet, COLLECTOR, "wc -l < /var/log/syslog").strip())
    sent = 20
    lines = "".join(
        json.dumps({"level": "info", "message": "foreign client", "run": run, "seq": i}) + "\n" for i in range(sent)
    )
    sh(fleet, SHIPPER, f"rsyslogd -f {work}/rsyslog.conf -i {work}/rsyslogd.pid")
    try:
        sh(fleet, SHIPPER, f"cat > {work}/in.log <<'EOF'\n{lines}EOF")
        deadline = time.monotonic() + (30 if certificate is None else 10)
        stored: list = []
        while time.monotonic() < deadline:
            stored = sh(fleet, COLLECTOR, f"grep -rhF -- '{run}' /var/log/webstack || true").splitlines()
            if len(stored) >= sent:
                break
            time.sleep(1)
        since = sh(fleet, COLLECTOR, f"tail -n +{syslog_before + 1} /var/log/syslog")
        reasons = Counter(m[1] for m in REFUSAL.finditer(since))
    finally:
        sh(fleet, SHIPPER, f"kill $(cat {work}/rsyslogd.pid) 2>/dev/null; rm -rf {work}")
        sh(fleet, COLLECTOR, f"rm -rf {STORED_DIR}/e2e-foreign-client")
    print(f"\nLOGS foreign client ({client}): sent={sent} stored={len(stored)} refused={dict(reasons)} load={load()}")
    if certificate is None:
        assert len(stored) == sent
        assert not reasons
    else:
        assert stored == []
        assert sum(reasons.values()) > 0
