#!/usr/bin/python3
"""Host-side steps of a blue/green release (installed by webstack.deploy.bluegreen).

  webstack-bluegreen wait   poll a URL until it answers the expected status
                            (and JSON fields); print the last answer as JSON
  webstack-bluegreen switch point an app's nginx upstream at a port, check the
                            configuration with `nginx -t` and reload nginx
                            gracefully; the previous file comes back if
                            either step fails
  webstack-bluegreen status print an app's release record, its blue and green
                            containers and the port nginx sends it to

Both print one JSON object on stdout and exit 0 on success, 1 on failure,
2 on bad arguments. An operator can flip traffic by hand with `switch`:
  webstack-bluegreen switch --app sample-api --port 5001
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import shlex
import ssl
import subprocess
import sys
import tempfile
import time
from urllib.parse import urlsplit

BODY_LIMIT = 400
SERVER_LINE = re.compile(r"server\s+127\.0\.0\.1:(\d+)")


class NamedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to an address, asking for a site by name (SNI) as a browser would."""

    def __init__(self, host: str, port: int, server_name: str, **kwargs) -> None:
        super().__init__(host, port, **kwargs)
        self.server_name = server_name or host

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._context.wrap_socket(self.sock, server_hostname=self.server_name)  # type: ignore[attr-defined]


def request(args: argparse.Namespace) -> dict:
    """One HTTP(S) request; returns status, headers and body (or the error)."""
    url = urlsplit(args.url)
    host_header = args.host or url.netloc
    timeout = max(args.request_timeout, 0.1)
    if url.scheme == "https":
        context = ssl.create_default_context(cafile=args.cafile or None)
        if args.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        server_name = (args.host or url.hostname or "").split(":")[0]
        conn: http.client.HTTPConnection = NamedHTTPSConnection(
            url.hostname or "", url.port or 443, server_name, timeout=timeout, context=context
        )
    else:
        conn = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=timeout)
    path = url.path or "/"
    if url.query:
        path += "?" + url.query
    headers = {"Host": host_header, "Connection": "close", "User-Agent": "webstack-bluegreen"}
    body = None
    if args.body is not None:
        body = args.body.encode()
        headers["Content-Type"] = "application/json"
    try:
        conn.request(args.method, path, body=body, headers=headers)
        response = conn.getresponse()
        raw = response.read()
        return {"status": response.status, "body": raw.decode(errors="replace")}
    except (OSError, http.client.HTTPException) as err:
        return {"status": None, "error": f"{type(err).__name__}: {err}" if str(err) else type(err).__name__}
    finally:
        conn.close()


def judge(answer: dict, args: argparse.Namespace) -> str | None:
    """Why the answer is not the expected one (None when it is)."""
    if answer["status"] is None:
        return answer["error"]
    if answer["status"] != args.status:
        return f"HTTP {answer['status']} (expected {args.status})"
    if args.contains and args.contains not in answer["body"]:
        return f"body does not contain {args.contains!r}"
    if args.expect:
        try:
            document = json.loads(answer["body"])
        except ValueError:
            return "body is not JSON"
        if not isinstance(document, dict):
            return "body is not a JSON object"
        for key, want in args.expect:
            if str(document.get(key)) != want:
                return f"{key} is {document.get(key)!r} (expected {want!r})"
    return None


def wait(args: argparse.Namespace) -> int:
    started = time.monotonic()
    attempts = 0
    while True:
        attempts += 1
        answer = request(args)
        problem = judge(answer, args)
        elapsed = time.monotonic() - started
        if problem is None or elapsed + args.interval > args.timeout:
            break
        time.sleep(args.interval)
    result = {
        "ok": problem is None,
        "url": args.url,
        "status": answer["status"],
        "problem": problem,
        "body": answer.get("body", "")[:BODY_LIMIT],
        "attempts": attempts,
        "elapsed": round(elapsed, 2),
    }
    try:
        result["json"] = json.loads(answer.get("body") or "null")
    except ValueError:
        result["json"] = None
    print(json.dumps(result))
    return 0 if problem is None else 1


def run(command: str) -> subprocess.CompletedProcess:
    return subprocess.run(shlex.split(command), capture_output=True, text=True)


def write_atomically(path: str, content: str) -> None:
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".bluegreen-", dir=directory)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def switch(args: argparse.Namespace) -> int:
    path = os.path.join(args.upstream_dir, f"{args.app}.conf")
    upstream = "webstack_" + args.app.replace("-", "_").replace(".", "_")
    try:
        with open(path, encoding="utf-8") as handle:
            before: str | None = handle.read()
    except FileNotFoundError:
        before = None
    match = SERVER_LINE.search(before or "")
    previous_port = int(match.group(1)) if match else None
    result = {"app": args.app, "file": path, "upstream": upstream, "previous_port": previous_port, "port": args.port}
    if previous_port == args.port and not args.force:
        print(json.dumps({**result, "changed": False}))
        return 0
    note = f"# {args.note}\n" if args.note else ""
    content = (
        "# Managed by webstack.deploy.bluegreen (webstack-bluegreen switch): the live colour of\n"
        f"# app {args.app}. Flip it with: webstack-bluegreen switch --app {args.app} --port <port>\n"
        f"{note}"
        f"upstream {upstream} {{ server 127.0.0.1:{args.port}; keepalive {args.keepalive}; }}\n"
    )
    write_atomically(path, content)

    def restore(reason: str, detail: str) -> int:
        if before is None:
            os.unlink(path)
        else:
            write_atomically(path, before)
        print(json.dumps({**result, "changed": False, "failed": True, "reason": reason, "detail": detail[-2000:]}))
        return 1

    test = run(args.test_command)
    if test.returncode != 0:
        return restore(f"'{args.test_command}' refused the new upstream; the previous file is back", test.stderr)
    reload = run(args.reload_command)
    if reload.returncode != 0:
        # The running nginx still has the old configuration: put the file back.
        return restore(f"'{args.reload_command}' failed; the previous file is back", reload.stderr + reload.stdout)
    print(json.dumps({**result, "changed": True}))
    return 0


def upstream_port(path: str) -> int | None:
    try:
        with open(path, encoding="utf-8") as handle:
            match = SERVER_LINE.search(handle.read())
    except FileNotFoundError:
        return None
    return int(match.group(1)) if match else None


def status(args: argparse.Namespace) -> int:
    record_path = os.path.join(args.state_dir, f"{args.app}.json")
    try:
        with open(record_path, encoding="utf-8") as handle:
            record = json.load(handle)
    except FileNotFoundError:
        record = None
    except ValueError as err:
        print(json.dumps({"failed": True, "reason": f"{record_path} is not JSON: {err}"}))
        return 1
    names = {color: f"{args.app}-{color}" for color in ("blue", "green")}
    # `docker container inspect` prints the containers it found and fails on
    # the others: the missing ones are simply absent from its output.
    inspect = subprocess.run(["docker", "container", "inspect", *names.values()], capture_output=True, text=True)
    try:
        found = {c["Name"].lstrip("/"): c for c in json.loads(inspect.stdout or "[]")}
    except ValueError:
        print(json.dumps({"failed": True, "reason": f"docker container inspect failed: {inspect.stderr.strip()}"}))
        return 1
    if not found and "No such" not in inspect.stderr and inspect.returncode != 0:
        print(json.dumps({"failed": True, "reason": f"docker container inspect failed: {inspect.stderr.strip()}"}))
        return 1
    containers = {}
    for color, name in names.items():
        c = found.get(name)
        containers[color] = {
            "exists": c is not None,
            "running": bool(c and c["State"]["Running"] and not c["State"].get("Restarting")),
            "image": c["Config"]["Image"] if c else None,
        }
    upstream = upstream_port(os.path.join(args.upstream_dir, f"{args.app}.conf"))
    print(json.dumps({"record": record, "containers": containers, "upstream_port": upstream}))
    return 0


def expectation(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    return key, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    w = sub.add_parser("wait", help="poll a URL until it answers as expected")
    w.add_argument("--url", required=True)
    w.add_argument("--host", default="", help="Host header and TLS server name")
    w.add_argument("--method", default="GET")
    w.add_argument("--body", default=None, help="JSON request body")
    w.add_argument("--status", type=int, default=200)
    w.add_argument("--contains", default="")
    w.add_argument("--expect", type=expectation, action="append", default=[], metavar="KEY=VALUE")
    w.add_argument("--interval", type=float, default=1.0)
    w.add_argument("--timeout", type=float, default=60.0, help="give up after this many seconds (0: one try)")
    w.add_argument("--request-timeout", type=float, default=5.0)
    w.add_argument("--insecure", action="store_true", help="do not verify the TLS certificate")
    w.add_argument("--cafile", default="")

    s = sub.add_parser("switch", help="point an app's nginx upstream at a port and reload nginx")
    s.add_argument("--app", required=True)
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--upstream-dir", default="/etc/nginx/webstack/upstreams")
    s.add_argument("--keepalive", type=int, default=16)
    s.add_argument("--note", default="")
    s.add_argument("--force", action="store_true", help="rewrite and reload even if the port is the same")
    s.add_argument("--test-command", default="nginx -t")
    s.add_argument("--reload-command", default="systemctl reload nginx")

    t = sub.add_parser("status", help="an app's release record, containers and upstream port")
    t.add_argument("--app", required=True)
    t.add_argument("--state-dir", default="/var/lib/webstack/releases")
    t.add_argument("--upstream-dir", default="/etc/nginx/webstack/upstreams")

    args = parser.parse_args(argv)
    if args.command == "wait":
        return wait(args)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", args.app):
        parser.error(f"--app must be an app name (letters, digits, _ . -), got {args.app!r}")
    return switch(args) if args.command == "switch" else status(args)


if __name__ == "__main__":
    sys.exit(main())
